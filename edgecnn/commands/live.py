"""`edgecnn live BUNDLE --source SRC`: classify a camera, stream, video file or slideshow as it runs.

Loads the bundle first (a bad bundle fails before the camera opens), then the source; prints one status line
while running and, at the end (end of stream, --duration, --max-frames, Ctrl-C or SIGTERM), a summary table and
OUT/live.json.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.commands.arguments import add_no_verify, positive_int
from edgecnn.errors import UsageError

if TYPE_CHECKING:
    from edgecnn.devices import DeviceProfile
    from edgecnn.live import LiveRun

REPORT_NAME = "live.json"
VIEWS = ("none", "window", "web")
STAGE_COLUMNS = [("stage", "stage", "{}"), ("p50_ms", "p50 ms", "{:.3f}"), ("p95_ms", "p95 ms", "{:.3f}"),
                 ("samples", "frames", "{:d}")]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle directory (or the model file inside it)")
    parser.add_argument(
        "--source", metavar="SRC",
        help="camera index or /dev/videoN, video file, rtsp:// or http:// URL, image folder or glob, picamera2, or "
        "synthetic:... (default: the device profile's camera, else 0)",
    )
    parser.add_argument("--device", metavar="NAME|PATH",
                        help="device profile (see `edgecnn devices`): threads and camera settings; flags override")
    parser.add_argument("--threads", type=positive_int, help="interpreter threads (default: the device profile's)")
    parser.add_argument("--width", type=positive_int, help="camera frame width to request")
    parser.add_argument("--height", type=positive_int, help="camera frame height to request")
    parser.add_argument("--fps", type=_positive_float,
                        help="camera fps to request; slideshow rate (default 1); overrides a video file's own rate")
    parser.add_argument("--fourcc", help="camera pixel format to request (default MJPG)")
    parser.add_argument("--pace", choices=("real", "fast"), default="real",
                        help="video files and slideshows: real = at their fps, like a camera (default); fast = "
                        "as fast as they decode")
    parser.add_argument("--every-frame", action="store_true",
                        help="infer every frame in order (bounded queue, no drops) instead of the newest one")
    parser.add_argument("--smooth", type=_fraction, default=0.0,
                        help="EMA smoothing of probabilities: weight of the past in [0, 1) (default 0 = off)")
    parser.add_argument("--min-confidence", type=_fraction, default=0.0,
                        help="below this top-1 probability the label shows as uncertain (default 0)")
    parser.add_argument("--top-k", type=positive_int, default=3, help="classes kept per frame (default 3)")
    parser.add_argument("--view", choices=VIEWS, default="none", help="none (default), window, or web (browser)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="web view address (default 127.0.0.1, this machine only; others get a warning)")
    parser.add_argument("--port", type=int, default=8080, help="web view port (default 8080; 0 = any free port)")
    parser.add_argument("--max-clients", type=positive_int, default=4, help="web view stream clients (default 4)")
    parser.add_argument("--truth", metavar="CSV",
                        help="first_frame,last_frame,label rows: top-1 on the inferred frames they cover")
    parser.add_argument("--record", metavar="JSONL", help="write one JSON line per inferred frame")
    parser.add_argument("--out", metavar="DIR", default="live", help=f"where {REPORT_NAME} goes (default ./live)")
    parser.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this long")
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N inferred frames")
    parser.add_argument("--watchdog", type=_positive_float, default=10.0, metavar="SECONDS",
                        help="a read taking longer than this counts as hung: the source is reopened (default 10)")
    parser.add_argument("--reconnect-delay", type=_positive_float, default=0.5, metavar="SECONDS",
                        help="first reconnect delay; doubles up to 10 s, with jitter (default 0.5)")
    parser.add_argument("--quiet", action="store_true", help="no status line")
    add_no_verify(parser)


def run(args: argparse.Namespace) -> int:
    from edgecnn import atomic
    from edgecnn.devices import load_profile
    from edgecnn.live import LiveConfig, LiveRun
    from edgecnn.live.faults import Backoff
    from edgecnn.live.pipeline import stop_on_signals
    from edgecnn.live.record import JsonlRecorder
    from edgecnn.live.sources import open_source, source_kind
    from edgecnn.live.truth import load_truth
    from edgecnn.report import format_table
    from edgecnn.runtime import load

    profile = load_profile(args.device) if args.device else None
    threads = args.threads or (profile.threads if profile else None)
    spec, options = _source_settings(args, profile)
    kind = source_kind(spec)  # a wrong --source fails here, before anything loads
    view = _make_view(args)  # so does a view this machine cannot show

    predictor = load(args.bundle, threads=threads, verify=args.verify)  # before the camera opens
    if predictor.manifest.task != "classify":
        raise UsageError(f"{args.bundle}: an embedding bundle (task {predictor.manifest.task}); live classifies")
    truth = load_truth(args.truth, predictor.labels) if args.truth else None
    config = LiveConfig(
        every_frame=args.every_frame, smooth=args.smooth, min_confidence=args.min_confidence, top_k=args.top_k,
        duration_s=args.duration, max_frames=args.max_frames, watchdog_s=args.watchdog,
        backoff=Backoff(base_s=args.reconnect_delay),
    )
    info = predictor.info()
    print(f"bundle {args.bundle}: {info['format']} {info['precision']}, {info.get('package', info['backend'])}, "
          f"threads {threads or 'auto'}")
    if profile is not None and info["format"] not in profile.runtime_preference:
        print(f"note: {profile.name} runs {', '.join(profile.runtime_preference)} bundles best; this one is "
              f"{info['format']}", file=sys.stderr)
    status = None if args.quiet else _StatusPrinter()
    live = LiveRun(predictor, lambda: open_source(spec, options)[0], kind.reconnects, config,
                   truth=truth, on_status=status)
    if view is not None:  # before the source opens: a port in use fails before the camera is touched
        print(f"view: {live.attach(view(metrics=live.summary) if args.view == 'web' else view())}")
    try:
        granted = live.open()
    except BaseException:
        if live.view is not None:
            live.view.close()
        raise
    print(f"source {live.capture.description}: {_granted_text(granted)}")
    out_dir = Path(args.out)
    recorder = JsonlRecorder(args.record) if args.record else None
    live.recorder = recorder
    with stop_on_signals(live):
        summary = live.run()
    if status is not None:
        status.finish()
    result: dict[str, Any] = {
        "bundle": str(args.bundle),
        "runtime": info,
        "device": profile.name if profile else None,
        "threads": threads,
        "record": str(args.record) if args.record else None,
        "record_lines": recorder.lines if recorder else None,
        **summary,
    }
    report_path = atomic.write_json(out_dir / REPORT_NAME, result)
    _print_summary(result, format_table)
    print(f"\nwrote {report_path}" + (f", {args.record}" if args.record else ""))
    return 0


def _source_settings(args: argparse.Namespace, profile: DeviceProfile | None) -> tuple[str, Any]:
    """--source and capture options: flags first, then the device profile's camera, then defaults."""
    from edgecnn.live.sources import SourceOptions

    camera = profile.camera if profile else None
    pick = lambda flag, key: flag if flag is not None else (getattr(camera, key) if camera else None)  # noqa: E731
    spec = args.source or (camera.source if camera else "0")
    options = SourceOptions(width=pick(args.width, "width"), height=pick(args.height, "height"),
                            fps=pick(args.fps, "fps"), fourcc=pick(args.fourcc, "fourcc") or "MJPG", pace=args.pace)
    return spec, options


def _make_view(args: argparse.Namespace) -> Any:
    """A constructor for the chosen view, or None; fails now when the view cannot work here."""
    if args.view == "web":
        from edgecnn.live.web import WebView

        return partial(WebView, host=args.host, port=args.port, max_clients=args.max_clients,
                       title=f"edgecnn live · {Path(args.bundle).name}")
    if args.view == "window":
        from edgecnn.live.window import WindowView

        window = WindowView(title=f"edgecnn live · {Path(args.bundle).name}")
        return lambda: window
    return None


def _granted_text(granted: dict[str, Any]) -> str:
    shown = {key: value for key, value in granted.items() if value not in (None, "", []) and key != "requested"}
    text = ", ".join(f"{key} {value}" for key, value in shown.items())
    if granted.get("differs"):
        text += f" (asked for {granted['requested']}; the driver granted otherwise for {granted['differs']})"
    return text


class _StatusPrinter:
    """One status line, rewritten in place on a terminal, printed every 5 s otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.calls = 0

    def __call__(self, live: LiveRun) -> None:
        self.calls += 1
        if self.tty:
            print("\r" + live.status_line().ljust(110)[:160], end="", file=sys.stderr, flush=True)
        elif self.calls % 5 == 1:
            print(live.status_line(), file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _print_summary(result: dict[str, Any], format_table: Any) -> None:
    frames = result["frames"]
    latency, staleness = result["latency_ms"], result["staleness_ms"]
    fmt = lambda value, template="{:.1f}": "-" if value is None else template.format(value)  # noqa: E731
    print(f"\nstopped by {result['stopped_by']} after {result['elapsed_s']:.1f} s ({result['mode']})")
    print(f"frames: {frames['captured']} captured, {frames['inferred']} inferred, {frames['dropped']} dropped, "
          f"{frames['unreadable']} unreadable")
    print(f"capture {fmt(result['capture_fps'])} fps, processed {fmt(result['processed_fps'])} fps; reconnects "
          f"{result['reconnects']} (disconnects {result['disconnects']}, watchdog {result['watchdog_trips']})")
    print(f"capture→result latency p50 {fmt(latency['p50'])} / p95 {fmt(latency['p95'])} / p99 {fmt(latency['p99'])} "
          f"ms; staleness p50 {fmt(staleness['p50'])} / p95 {fmt(staleness['p95'])} ms")
    truth = result["truth"]
    if truth["scored"]:
        print(f"top-1 {truth['top1']:.2%} on {truth['scored']} inferred frames the truth file covers")
    rows = [{"stage": name, **values} for name, values in result["stages"].items()]
    print("\n" + format_table(rows, STAGE_COLUMNS))
