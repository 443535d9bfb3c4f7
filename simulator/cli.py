"""`python -m simulator`: run the simulated Together endpoint in the foreground."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from simulator.config import DEFAULT_MODELS, READER_KINDS, SimConfig
from simulator.server import SimServer

__all__ = ["build_config", "main"]

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Local Together-compatible chat-completions server with simulated readers.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="mean latency")
    parser.add_argument(
        "--latency-distribution", choices=("fixed", "exponential", "lognormal"), default="fixed"
    )
    for kind in ("429", "503", "500", "timeout", "malformed", "empty", "reset"):
        parser.add_argument(
            f"--fault-{kind}", type=float, default=0.0, metavar="P", help="probability 0..1"
        )
    parser.add_argument("--timeout-s", type=float, default=30.0, help="sleep of a timeout fault")
    parser.add_argument("--seed", type=int, default=0, help="seed of faults and latency")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute per model")
    parser.add_argument("--rate-burst", type=float, default=None, help="token-bucket capacity")
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this bearer key (default: accept any); prefer an env var in scripts",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=KIND",
        help=f"add a model (KIND: {', '.join(sorted(READER_KINDS))}); repeatable",
    )
    parser.add_argument("--context-length", type=int, default=8192)
    parser.add_argument("--log-level", default="INFO")
    return parser


def build_config(args: argparse.Namespace) -> SimConfig:
    """A SimConfig from parsed command-line arguments."""
    models = dict(DEFAULT_MODELS)
    for spec in args.model:
        name, separator, kind = spec.partition("=")
        if not separator or not name:
            raise ValueError(f"--model expects NAME=KIND, got {spec!r}")
        models[name] = kind
    return SimConfig(
        host=args.host,
        port=args.port,
        latency_ms_mean=args.latency_ms,
        latency_distribution=args.latency_distribution,
        fault_429=args.fault_429,
        fault_503=args.fault_503,
        fault_500=args.fault_500,
        fault_timeout=args.fault_timeout,
        fault_malformed=args.fault_malformed,
        fault_empty=args.fault_empty,
        fault_reset=args.fault_reset,
        timeout_s=args.timeout_s,
        seed=args.seed,
        rpm_per_model=args.rpm,
        rate_burst=args.rate_burst,
        required_api_key=args.api_key,
        models=models,
        context_length=args.context_length,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until Ctrl-C; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = build_config(args)
    except ValueError as error:
        parser.error(str(error))
    server = SimServer(config)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("interrupted")
    finally:
        server.stop()
    return 0
