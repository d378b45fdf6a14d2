"""Flex Template entry point: Dataflow passes template parameters as ``--name=value``; wirestream's flags.

Template parameter names cannot contain hyphens and every parameter arrives with a value, so this maps
``--bootstrap_servers=...`` to ``--bootstrap-servers=...`` and ``--no_nlp=true`` to ``--no-nlp`` (``false``
drops the flag) for the options :class:`pipeline.options.WirestreamOptions` defines; Beam's own options
(``--project``, ``--sdk_container_image``...) pass through unchanged.
"""

from __future__ import annotations

import argparse
import logging
import sys


def _wirestream_actions() -> dict:
    from pipeline.options import WirestreamOptions

    parser = argparse.ArgumentParser()
    WirestreamOptions._add_argparse_args(parser)
    return {a.dest: a for a in parser._actions if a.option_strings}


def translate_template_args(argv: list[str]) -> list[str]:
    """Template-style arguments -> ``wirestream run`` arguments (pure; tested in tests/unit/test_deploy.py)."""
    actions = _wirestream_actions()
    out: list[str] = []
    for arg in argv:
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        action = actions.get(name.replace("-", "_")) if name else None
        if action is None:
            out.append(arg)
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            if not eq or value.strip().lower() in ("true", "1", "yes"):
                out.append(flag)
            elif value.strip().lower() not in ("false", "0", "no", ""):
                raise SystemExit(f"template parameter {name}={value!r}: expected true or false")
        elif isinstance(action, argparse._AppendAction) and eq:
            for item in (v for v in value.split(";") if v.strip()):  # repeatable: ';'-separated in one parameter
                out.append(f"{flag}={item.strip()}")
        elif eq:
            out.append(f"{flag}={value}")
        else:
            out.append(flag)
    return out


def main(argv=None) -> int:
    from pipeline.run import run_job

    logging.basicConfig(level=logging.INFO)
    args = translate_template_args(list(sys.argv[1:] if argv is None else argv))
    run_job(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
