def find_events(doc, **kw):
    return []
