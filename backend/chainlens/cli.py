"""The ``chainlens`` command: ``serve``, ``run FILE.py``, ``trace SCRIPT.py``, ``examples``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .api.app import create_app
    from .api.http_guard import guarded_protocol
    from .settings import Settings

    overrides: dict[str, Any] = {
        k: v
        for k, v in (
            ("host", args.host),
            ("port", args.port),
            ("device", args.device),
            ("workers", args.workers),
        )
        if v is not None
    }
    settings = Settings(**overrides)
    unusable = _unusable_data_dir(settings)
    if unusable:
        print(unusable, file=sys.stderr)
        return 2
    if settings.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("chainlens: --device cuda, but this machine has no CUDA GPU", file=sys.stderr)
            return 2
    print(
        f"chainlens {settings.host}:{settings.port} — open http://{settings.host}:{settings.port}/",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        ws_max_size=settings.ws_max_message_bytes,
        ws_per_message_deflate=settings.ws_compression,
        timeout_keep_alive=5,
        limit_concurrency=512,
        h11_max_incomplete_event_size=16384,
        http=guarded_protocol(settings),
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )
    return 0


def _unusable_data_dir(settings: Any) -> str | None:
    """Why the SQLite store could not keep runs where the settings say, said before the
    server starts (None when it can, or when runs are kept elsewhere)."""
    from .settings import data_dir

    if settings.redis_url or settings.store != "sqlite":
        return None
    folder = data_dir(settings)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = e.strerror or str(e)
    else:
        if os.access(folder, os.W_OK | os.X_OK):
            return None
        reason = "not writable"
    return (
        f"chainlens: cannot keep runs in {folder} ({reason}): set CHAINLENS_DATA_DIR to a "
        "writable directory, or CHAINLENS_STORE=memory to keep them in the process"
    )


def _format_view(view: Any) -> str:
    if view is None:
        return "None"
    if view.values is not None:
        return f"{view.values}"
    st = view.stats
    return f"<{view.dtype} {view.shape}: min {st.min}, max {st.max}, mean {st.mean}>"


def _run(args: argparse.Namespace) -> int:
    import torch

    import chainlens
    from chainlens.errors import ProgramRejected

    torch.set_num_threads(1)
    with open(args.file, encoding="utf-8") as f:
        source = f.read()
    try:
        run = chainlens.run(source, device=args.device, seed=args.seed)
    except ProgramRejected as e:
        print(f"{args.file}:{e.line}: {e.code}: {e.message}", file=sys.stderr)
        return 2
    run._program = (source, args.file)
    _write_files(run, args)
    if args.json:
        sys.stdout.write(run.model_dump_json() + "\n")
        return 0 if run.status == "ok" else 1
    if run.stdout:
        print(run.stdout, end="" if run.stdout.endswith("\n") else "\n")
        print("-" * 40)
    _summary(run)
    return 0 if run.status == "ok" else 1


def _write_files(run: Any, args: argparse.Namespace) -> None:
    """The files asked for: ``--dot``, ``--html`` (and ``trace``'s ``--json``)."""
    for option in ("dot", "html", "json_file"):
        path = getattr(args, option, None)
        if path:
            run.save(path)


def _summary(run: Any) -> None:
    """The Run in a few lines: status, variables, the backward order, diagnostics."""
    print(
        f"status: {run.status}   device: {run.device}   nodes: {len(run.nodes)}   "
        f"passes: {len(run.passes)}"
    )
    if run.error:
        print(f"error (line {run.error.line}): {run.error.type}: {run.error.message}")
    for name, var in run.variables.items():
        grad = f"   grad = {_format_view(var.grad)}" if var.grad is not None else ""
        print(f"  {name} = {_format_view(var.value)}{grad}")
    labels = {n.id: n for n in run.nodes}
    for p in run.passes:
        if not p.steps:
            continue
        order = " -> ".join(labels[s.node].grad_fn if s.node in labels else s.node for s in p.steps)
        print(f"backward pass {p.index + 1} (line {p.line}): {order}")
    for d in run.diagnostics:
        print(f"  [{d.severity}] {d.code} (line {d.line}): {d.message}\n      fix: {d.hint}")


def _trace(args: argparse.Namespace) -> int:
    """The user's own script, run in this process as ``python script.py`` would run it,
    recorded: any import, any model. Nothing is sandboxed: it is the user's code."""
    import runpy
    import tempfile
    import webbrowser
    from pathlib import Path

    from .recording import Recording

    script = str(Path(args.script).resolve())
    names: dict[str, Any] = {}
    rec = Recording(
        variables=lambda: names,
        program_file=script,
        max_recorded_passes=args.max_recorded_passes,
    )
    argv, path = sys.argv, list(sys.path)
    sys.argv = [script, *args.args]
    sys.path.insert(0, str(Path(script).parent))  # (as python puts the script's folder first)
    failed: BaseException | None = None
    try:
        with rec:
            names.update(runpy.run_path(script, run_name="__main__"))
    except Exception as e:  # noqa: BLE001 - the script's own error: recorded, then reported
        failed = e
    finally:
        sys.argv, sys.path[:] = argv, path
    run = rec.run
    assert run is not None
    if not (args.html or args.json_file or args.dot):
        args.html = str(Path(tempfile.mkdtemp(prefix="chainlens-")) / f"{Path(script).stem}.html")
        args.open = True
    _write_files(run, args)
    print("-" * 40)
    _summary(run)
    if args.html:
        print(f"saved: {args.html}")
        if args.open:
            webbrowser.open(Path(args.html).resolve().as_uri())
    if failed is not None:
        print(f"{type(failed).__name__}: {failed}", file=sys.stderr)
    return 0 if run.status == "ok" else 1


def _examples(args: argparse.Namespace) -> int:
    from .examples.catalog import examples

    for ex in examples():
        print(f"{ex.id:28} {ex.title}\n{'':28} {ex.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chainlens", description="See what loss.backward() does.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the web page and the API")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None)
    serve.add_argument("--workers", type=int, default=None)
    serve.add_argument("--log-level", default=os.environ.get("CHAINLENS_LOG_LEVEL", "warning"))
    serve.set_defaults(func=_serve)
    run = sub.add_parser("run", help="run a program file and print its summary")
    run.add_argument("file")
    run.add_argument("--json", action="store_true", help="print the Run as JSON")
    run.add_argument("--dot", metavar="FILE", help="also write the graph as DOT (Graphviz)")
    run.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    run.add_argument("--seed", type=int, default=0)
    run.set_defaults(func=_run)
    run.add_argument("--html", metavar="FILE", help="also write one standalone HTML file")
    trace = sub.add_parser(
        "trace",
        help="run your own script here (not sandboxed) and record it",
        description="Run SCRIPT in this process, as python would (any import, any model: "
        "it is your code, not sandboxed), recording its autograd graphs and backward "
        "passes. With no output named, writes an HTML file and opens it in the browser.",
    )
    trace.add_argument("script")
    trace.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    trace.add_argument("--html", metavar="FILE", help="write the run as one HTML file")
    trace.add_argument("--json", dest="json_file", metavar="FILE", help="write the Run's JSON")
    trace.add_argument("--dot", metavar="FILE", help="write the graph as DOT (Graphviz)")
    trace.add_argument("--open", action="store_true", help="open the HTML file in a browser")
    trace.add_argument("--max-recorded-passes", type=int, default=None)
    trace.set_defaults(func=_trace)
    ex = sub.add_parser("examples", help="list the built-in examples")
    ex.set_defaults(func=_examples)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
