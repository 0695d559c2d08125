"""python -m localdev {up,run,upload,down,status,check-down}: what the Makefile's
up, run, upload and down targets call (README: "With the Airflow UI, no Docker")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.error import URLError

from localdev.dag_runner import PROJECT_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=PROJECT_DIR / ".local", help="state directory (.local)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local stack and Airflow in the background")
    up.add_argument("--port", type=int, default=8080, help="port of the Airflow UI and API on 127.0.0.1")
    up.add_argument("--data", type=Path, help="raw-bucket-shaped folder to upload (default: none)")
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the UI and the DAG")
    run = commands.add_parser("run", help="trigger one DAG run, follow it, write OUT")
    run.add_argument("--out", type=Path, default=PROJECT_DIR / "out")
    run.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the run")
    upload = commands.add_parser("upload", help="upload a raw-bucket-shaped folder to the raw bucket")
    upload.add_argument("--data", type=Path, required=True)
    commands.add_parser("down", help="stop every process `up` started")
    commands.add_parser("status", help="which processes of the stack are running")
    check = commands.add_parser("check-down", help="fail when the stack is up (make demo, make demo-reset)")
    check.add_argument("--action", default="make demo")
    args = parser.parse_args(argv)

    # Imported here so that `--help` and check-down stay quick.
    from localdev import stack
    from localdev.airflow_client import AirflowAPIError

    try:
        if args.command == "up":
            data = args.data.resolve() if args.data else None
            if data is not None and not data.is_dir():
                parser.error(f"DATA folder not found: {data}")
            return stack.up(args.state, args.port, data, timeout=args.timeout)
        if args.command == "run":
            from localdev.run import run as run_dag

            return run_dag(args.state, args.out, timeout=args.timeout)
        if args.command == "upload":
            if not args.data.is_dir():
                parser.error(f"DATA folder not found: {args.data}")
            return stack.upload(args.state, args.data.resolve())
        if args.command == "down":
            return stack.down(args.state)
        if args.command == "status":
            return stack.status(args.state)
        stack.refuse_while_up(args.state, args.action)
        return 0
    except (stack.StackError, AirflowAPIError, TimeoutError, URLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
