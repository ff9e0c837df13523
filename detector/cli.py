"""Command line of the edge worker: ``count``, ``propose``, ``run``, ``check-config`` and
``dead-letters``."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from contract.camera import CountLine, Zone
from contract.scene import (
    SCENE_GRID_DEFAULT,
    SCENE_K_DEFAULT,
    SCENE_LEARNING_S_DEFAULT,
    SceneMap,
)
from contract.site import (
    DEFAULT_MODEL,
    Camera,
    ConfigError,
    ModelSettings,
    SceneSettings,
    format_validation_error,
    load_config,
)
from detector.config import resolve_model_path
from detector.outbox import DeadLetter, Outbox, outbox_path
from detector.source import SourceError, VideoSource

if TYPE_CHECKING:
    from detector.currency import MovementTally
    from detector.engine import CameraPipeline

log = logging.getLogger("detector")


def parse_line(text: str, index: int) -> CountLine:
    """``X1,Y1,X2,Y2[,NAME]`` in native pixels -> a CountLine (default name line-N)."""
    parts = text.split(",")
    if len(parts) not in (4, 5):
        raise argparse.ArgumentTypeError(f"--line {text!r}: expected X1,Y1,X2,Y2[,NAME]")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts[:4])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--line {text!r}: coordinates must be numbers") from exc
    name = parts[4] if len(parts) == 5 else f"line-{index + 1}"
    try:
        return CountLine(name=name, points=((x1, y1), (x2, y2)))
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            f"--line {text!r}: {format_validation_error(exc)}"
        ) from exc


def count_source(
    source: str,
    lines: list[CountLine],
    model: ModelSettings,
    model_path: str,
    movements: bool = False,
) -> dict[str, object]:
    """Run the worker's engine over a whole source and total the crossings per line.

    ``seconds`` and ``fps`` cover the whole source, from the first frame read to the last,
    model loading included; ``startup_seconds`` says how much of it the first frame took
    (loading the model, and on a first run exporting it). With ``movements`` every line is
    a gate, and the result adds the movements between them (``movement_result``).
    """
    from detector.detect import VehicleDetector
    from detector.engine import CameraPipeline  # imports Ultralytics, which prints on import

    detector = VehicleDetector(model, model_path)
    video = VideoSource(source, start_epoch=0.0)
    pipeline: CameraPipeline | None = None  # built on the first frame (its size and fps)
    started = time.perf_counter()
    startup = 0.0
    frames = 0
    for pending in video:
        if pipeline is None:
            camera = Camera(
                id="cli",
                source="cli",
                reference_resolution=(pending.meta.width, pending.meta.height),
                lines=lines,
                max_detect_fps=120,
            )
            pipeline = CameraPipeline(camera, detector, video.fps, movements=movements)
        pipeline.process(pending)
        frames += 1
        if frames == 1:  # the first frame loads (on a first run also exports) the model
            startup = time.perf_counter() - started
    if pipeline is not None:
        pipeline.finish()  # closes the vehicles still in view
    seconds = time.perf_counter() - started
    result: dict[str, dict[str, object]] = {}
    for line in lines:
        by_direction: dict[str, int] = {}
        by_class: dict[str, int] = {}
        totals = pipeline.totals if pipeline else {}
        for (name, direction, vehicle_class), n in totals.items():
            if name == line.name:
                by_direction[direction] = by_direction.get(direction, 0) + n
                by_class[vehicle_class] = by_class.get(vehicle_class, 0) + n
        result[line.name] = {
            "total": sum(by_direction.values()),
            "by_direction": by_direction,
            "by_class": by_class,
        }
    counted: dict[str, object] = {
        "lines": result,
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
        "startup_seconds": round(startup, 3),
    }
    if movements:
        from detector.currency import MovementTally

        tally = pipeline.movement_totals if pipeline else MovementTally()
        counted |= movement_result(tally, [line.name for line in lines])
    return counted


def movement_result(tally: MovementTally, gates: list[str]) -> dict[str, object]:
    """``movements``: per (origin, destination) gate pair its total and totals per class;
    ``unmatched``: per gate, its crossings that are no end of a movement (0 included)."""
    pairs: dict[tuple[str, str], Counter[str]] = {}
    for (origin, destination, vehicle_class), n in sorted(tally.movements.items()):
        pairs.setdefault((origin, destination), Counter())[vehicle_class] += n
    unmatched = dict.fromkeys(gates, 0)
    for (gate, _), n in tally.unmatched.items():
        unmatched[gate] += n
    return {
        "movements": [
            {
                "origin": origin,
                "destination": destination,
                "total": sum(by_class.values()),
                "by_class": dict(by_class),
            }
            for (origin, destination), by_class in pairs.items()
        ],
        "unmatched": unmatched,
    }


def learn_scene(
    source: str,
    model: ModelSettings,
    model_path: str,
    settings: SceneSettings,
    seconds: float = SCENE_LEARNING_S_DEFAULT,
) -> SceneMap:
    """Learn a scene map over the first ``seconds`` of a source (the whole of a shorter file),
    with the worker's engine. Its camera measures one zone over the whole frame, so the
    detector sees all of it and the learner every confirmed track."""
    from detector.detect import VehicleDetector
    from detector.engine import CameraPipeline
    from detector.scene import SceneLearner

    video = VideoSource(source, start_epoch=0.0)
    detector = VehicleDetector(model, model_path)
    learner = SceneLearner(settings)
    pipeline: CameraPipeline | None = None
    started = datetime.now(UTC)
    first_s: float | None = None
    for pending in video:
        meta = pending.meta
        first_s = meta.timestamp_s if first_s is None else first_s
        if meta.timestamp_s - first_s > seconds:
            break
        if pipeline is None:
            w, h = meta.width, meta.height
            frame = Zone(name="frame", polygon=[(0, 0), (w, 0), (w, h), (0, h)])
            camera = Camera(
                id="cli",
                source="cli",
                reference_resolution=(w, h),
                zones=[frame],
                max_detect_fps=120,
            )
            pipeline = CameraPipeline(camera, detector, video.fps, observers=[learner])
        pipeline.process(pending)
    return learner.snapshot("cli", started, datetime.now(UTC), None)


def _cmd_propose(args: argparse.Namespace) -> int:
    model = ModelSettings(imgsz=args.imgsz, backend=args.backend)
    try:
        settings = SceneSettings(grid=args.grid, k=args.k)
    except ValidationError as exc:
        raise ConfigError(f"--grid/--k: {format_validation_error(exc)}") from exc
    model_path = resolve_model_path(args.model, DEFAULT_MODEL)
    output = _claim_stdout() if args.json else sys.stdout
    scene_map = learn_scene(args.source, model, model_path, settings, args.seconds)
    if args.json:
        result = {
            "scene_map": scene_map.model_dump(mode="json"),
            "lines": [line.model_dump(mode="json") for line in scene_map.proposals.lines],
            "zones": [zone.model_dump(mode="json") for zone in scene_map.proposals.zones],
        }
        print(json.dumps(result), file=output, flush=True)
        return 0
    print(describe_proposals(scene_map))
    return 0


def describe_proposals(scene_map: SceneMap) -> str:
    """A readable summary: what the map holds, and each proposal with the ``count`` argument
    that counts with it."""
    text = [
        f"{scene_map.vehicles} vehicles over {scene_map.analysed_s:g} s of stream; "
        f"{len(scene_map.cells)} of {scene_map.cols}x{scene_map.rows} cells shown "
        f"(k={scene_map.k}), {scene_map.withheld_cells} withheld"
    ]
    for line in scene_map.proposals.lines:
        (x1, y1), (x2, y2) = line.points
        names = ", ".join(f"{key}={value}" for key, value in line.direction_names.items())
        text.append(f"line {line.name} ({names}): --line={x1:g},{y1:g},{x2:g},{y2:g},{line.name}")
        text.append(f"  confidence {line.confidence:.2f}: {line.reason}")
    for zone in scene_map.proposals.zones:
        text.append(f"zone {zone.name}: {len(zone.polygon)} points, {zone.lanes} lane(s)")
        text.append(f"  confidence {zone.confidence:.2f}: {zone.reason}")
    if not scene_map.proposals.lines:
        text.append("no flow was observed well enough to propose a line")
    return "\n".join(text)


def _claim_stdout() -> TextIO:
    """Keep the real stdout for our JSON and send everything else written to it (library
    banners, export progress) to stderr, so ``--json`` output is always parseable."""
    sys.stdout.flush()
    ours = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return ours


def _cmd_count(args: argparse.Namespace) -> int:
    lines = [parse_line(text, i) for i, text in enumerate(args.line)]
    if len({line.name for line in lines}) != len(lines):
        raise SystemExit("error: --line names must be unique")
    settings = ModelSettings(imgsz=args.imgsz, backend=args.backend)
    model_path = resolve_model_path(args.model, DEFAULT_MODEL)
    output = _claim_stdout() if args.json else sys.stdout
    result = count_source(args.source, lines, settings, model_path, args.movements)
    if args.json:
        print(json.dumps(result), file=output, flush=True)
    else:
        for name, line in result["lines"].items():  # type: ignore[attr-defined]
            print(f"{name}: {line['total']} {line['by_direction']} {line['by_class']}")
        for move in result.get("movements", []):  # type: ignore[attr-defined]
            print(f"{move['origin']} -> {move['destination']}: {move['total']} {move['by_class']}")
        if args.movements:
            print(f"unmatched: {result['unmatched']}")
        print(f"{result['frames']} frames in {result['seconds']} s ({result['fps']} frames/s)")
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    lines = sum(len(c.lines) for c in config.cameras)
    zones = sum(len(c.zones) for c in config.cameras)
    print(
        f"{args.config}: OK — site {config.site}, {len(config.cameras)} camera(s), "
        f"{lines} line(s), {zones} zone(s)"
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from detector.worker import run_worker

    config = load_config(Path(args.config))
    return run_worker(config, api_url=args.api_url, model_path=args.model)


@contextmanager
def _outboxes(args: argparse.Namespace) -> Iterator[list[Outbox]]:
    """The existing outboxes of the config's cameras (or of ``--camera``), open."""
    config = load_config(Path(args.config))
    ids = [camera.id for camera in config.cameras]
    if args.camera is not None and args.camera not in ids:
        raise ConfigError(f"{args.config}: no camera {args.camera!r} (cameras: {', '.join(ids)})")
    paths = [
        outbox_path(config.outbox.path, camera_id, len(ids))
        for camera_id in ids
        if args.camera in (None, camera_id)
    ]
    with ExitStack() as stack:
        outboxes = []
        for path in paths:
            if path.exists():
                outbox = Outbox(path)
                stack.callback(outbox.close)
                outboxes.append(outbox)
        yield outboxes


def _dead_letter_line(letter: DeadLetter) -> str:
    """Id, interval (ISO 8601 start/duration), status, detail: never the report's contents."""
    start = letter.interval_start.isoformat().replace("+00:00", "Z")
    interval = f"{start}/PT{letter.interval_seconds}S" if letter.interval_seconds else start
    status = str(letter.status) if letter.status is not None else "-"
    return "\t".join((letter.report_id, interval, status, letter.detail))


def _cmd_dead_letters_list(args: argparse.Namespace) -> int:
    with _outboxes(args) as outboxes:
        letters = [letter for outbox in outboxes for letter in outbox.dead_letters()]
    for letter in letters:
        print(_dead_letter_line(letter))
    print(f"{len(letters)} dead-lettered report(s)", file=sys.stderr)
    return 0


def _cmd_dead_letters_resend(args: argparse.Namespace) -> int:
    with _outboxes(args) as outboxes:
        moved = sum(outbox.resend(None if args.all else [args.id]) for outbox in outboxes)
    if args.id and not moved:
        print(f"error: no dead-lettered report {args.id}", file=sys.stderr)
        return 1
    print(f"{moved} report(s) moved back to the outbox; the running worker delivers them")
    return 0


def _cmd_dead_letters_drop(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            f"error: dropping deletes report {args.id} for good (counted as dropped);"
            " add --yes to confirm",
            file=sys.stderr,
        )
        return 2
    with _outboxes(args) as outboxes:
        dropped = sum(outbox.drop_dead_letter(args.id) for outbox in outboxes)
    if not dropped:
        print(f"error: no dead-lettered report {args.id}", file=sys.stderr)
        return 1
    print(f"dropped report {args.id} (counted as dropped)")
    return 0


MAX_LEARNING_S = 3600.0


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_LEARNING_S:
        raise argparse.ArgumentTypeError(f"must be a number in (0, {MAX_LEARNING_S:g}]")
    return seconds


def _add_propose(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    propose = commands.add_parser(
        "propose",
        help="learn a scene map from a source and propose count lines and zones",
        description="Learns where vehicles drive (an aggregate map: no image, no vehicle's "
        "path) and proposes one count line and one zone per flow. Line points are native "
        "pixels, ready for `count --line X1,Y1,X2,Y2,NAME`.",
    )
    propose.add_argument("--source", required=True, help="video file, RTSP/HTTP URL or device")
    propose.add_argument(
        "--seconds",
        type=_positive_seconds,
        default=SCENE_LEARNING_S_DEFAULT,
        help=f"stream seconds to learn from (default: the whole file, at most "
        f"{SCENE_LEARNING_S_DEFAULT} s)",
    )
    propose.add_argument("--model", help=f"weights path (env TALLY_MODEL; default {DEFAULT_MODEL})")
    propose.add_argument("--imgsz", type=int, help="inference size of the long side (default 640)")
    propose.add_argument("--backend", choices=["auto", "torch", "openvino"], default="auto")
    propose.add_argument(
        "--grid", type=int, default=SCENE_GRID_DEFAULT, help="cells along the frame's long side"
    )
    propose.add_argument(
        "--k", type=int, default=SCENE_K_DEFAULT, help="vehicles a cell needs to be shown"
    )
    propose.add_argument("--json", action="store_true", help="print one JSON object")
    propose.set_defaults(handler=_cmd_propose)


def _add_dead_letters(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    letters = commands.add_parser(
        "dead-letters",
        help="list, re-send or drop reports the API rejected",
        description="Reports the API rejected (4xx) wait in the outbox's dead-letter table. "
        "Fix the camera's registration, then re-send them; the running worker delivers them.",
    )
    letters.add_argument("--config", required=True, help="site config YAML (finds the outboxes)")
    letters.add_argument("--camera", help="only this camera's outbox")
    actions = letters.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "list", help="print id, interval, status and detail, one per line (tab-separated)"
    ).set_defaults(handler=_cmd_dead_letters_list)
    resend = actions.add_parser("resend", help="move dead letters back to the outbox")
    which = resend.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("--id", help="one report id")
    resend.set_defaults(handler=_cmd_dead_letters_resend)
    drop = actions.add_parser("drop", help="delete one dead letter for good")
    drop.add_argument("--id", required=True, help="report id")
    drop.add_argument("--yes", action="store_true", help="confirm: the report is not delivered")
    drop.set_defaults(handler=_cmd_dead_letters_drop)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m detector",
        description="Tally edge worker: vehicle counts and congestion; frames never leave memory.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    count = commands.add_parser("count", help="count line crossings over a whole source")
    count.add_argument("--source", required=True, help="video file, RTSP/HTTP URL or device index")
    count.add_argument(
        "--line",
        action="append",
        required=True,
        metavar="X1,Y1,X2,Y2[,NAME]",
        help="count line in native pixels (repeatable)",
    )
    count.add_argument("--model", help=f"weights path (env TALLY_MODEL; default {DEFAULT_MODEL})")
    count.add_argument("--imgsz", type=int, help="inference size of the long side (default 640)")
    count.add_argument("--backend", choices=["auto", "torch", "openvino"], default="auto")
    count.add_argument("--json", action="store_true", help="print one JSON object")
    count.add_argument(
        "--movements",
        action="store_true",
        help="every line is a gate: add each vehicle's first -> last gate (movements) and "
        "the crossings that are no end of a movement (unmatched, per gate)",
    )
    count.set_defaults(handler=_cmd_count)
    _add_propose(commands)

    run = commands.add_parser("run", help="run the long-lived worker that reports to the API")
    run.add_argument("--config", required=True, help="site config YAML")
    run.add_argument("--api-url", help="central API base URL (overrides the config)")
    run.add_argument("--model", help="weights path (overrides TALLY_MODEL and the config)")
    run.set_defaults(handler=_cmd_run)

    check = commands.add_parser("check-config", help="validate a site config and explain errors")
    check.add_argument("config", help="site config YAML")
    check.set_defaults(handler=_cmd_check_config)
    _add_dead_letters(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SourceError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
