"""The batch engine: plans a run against the ledger, hands items to workers that pull the next one when free,
writes each result atomically and then its ledger line, retries what a worker fault broke.

One worker on this machine runs in the driver's own process. Several workers, or a Ray cluster, run as Ray
actors (one ComfyUI server each, its GPU assigned by Ray); the driver keeps the futures itself and waits with
`ray.wait`, because `ray.util.ActorPool.get_next_unordered` cannot say which item a dead actor was holding.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from . import items as itemlib, paths, prompt as prompts, segments, settings as settinglib, video
from .progress import Progress
from .segmented_clip import SegmentedClip
from .comfy_host import ComfyClient
from .worker import EditWorker

SMOKE_NOTICE = ("SMOKE TEST: the real ICEdit weights were not found, so this run uses small random-weight "
                "models. The images it writes are noise, not edits; they show that the whole path runs.")
ACTOR_RESTARTS = 2  # Ray restarts a worker actor whose process died this many times before giving it up
LOCK_FILE = ".icedit-run.lock"  # in the output folder while a run writes there (output_lock)


class RunError(RuntimeError):
    """The run cannot start (bad option, no usable worker); one line for the user."""


@dataclasses.dataclass
class _RunOptions:
    output: str
    workflow: str = "basic"  # a shipped workflow's name, or the path of the user's own (it declares its inputs)
    extra_inputs: dict = dataclasses.field(default_factory=dict)  # --set NAME=VALUE: what the user's workflow declares
    models_dir: str | None = None
    servers: list[str] = dataclasses.field(default_factory=list)
    workers: int | None = None
    ray_address: str | None = None
    retries: int = 2
    item_timeout: float = 1800.0
    smoke_test: bool = False
    cache: str = os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui"))
    comfyui_path: str | None = None
    quiet: bool = False


# Everything a run needs, set once from the command line (or by evaluate.py): the options above, and one field per
# setting of settings.SETTINGS (seed, steps, ...; None: the default for the models the run uses).
RunConfig = dataclasses.make_dataclass(
    "RunConfig", [(setting.name, object, dataclasses.field(default=None)) for setting in settinglib.SETTINGS],
    bases=(_RunOptions,), namespace={"__module__": __name__, "__doc__": (
        "Everything a run needs, set once from the command line (or by evaluate.py): the options of _RunOptions and "
        "one field per settings.SETTINGS entry (None: the default for the models the run uses).")})


class Workflows:
    """The workflows a run may use, each read once with the inputs it declares: the shipped ones by name, and the
    one --workflow names (a shipped name or the user's own file)."""

    def __init__(self, chosen: str):
        self.chosen = chosen
        self._read: dict[str, tuple[dict, dict]] = {}

    def known(self, name: str) -> bool:
        return name in prompts.WORKFLOWS or name == self.chosen

    def ui(self, name: str) -> dict:
        return self._load(name)[0]

    def inputs(self, name: str) -> dict:
        """{setting: [(node id, input)]}: what the workflow declares a run may set."""
        return self._load(name)[1]

    def _load(self, name: str) -> tuple[dict, dict]:
        if name not in self._read:
            source = prompts.workflow_path(name)
            workflow = prompts.load_workflow(name)
            inputs = prompts.declared_inputs(workflow, source)
            if "instruction" not in inputs or not {"image", "video"} & set(inputs):
                raise prompts.PromptError(f"{source}: extra.icedit.inputs declares {', '.join(inputs)}; a run needs "
                                          f"instruction and image (or video) at least; {prompts.DECLARATION_HELP}")
            self._read[name] = workflow, inputs
        return self._read[name]


@dataclasses.dataclass
class _Dispatch:
    """The state of handing jobs out: the workers, where results and failures go, and who failed which job."""
    backend: object
    live: list  # the names of the workers that take jobs
    config: RunConfig
    ledger: itemlib.Ledger
    progress: Progress
    summary: Summary
    attempts_log: str  # every failed try, one line each
    log: object
    failed_on: dict = dataclasses.field(default_factory=lambda: collections.defaultdict(list))  # job id: workers
    clips: dict = dataclasses.field(default_factory=dict)  # job id: its SegmentedClip, for a clip in segments


@dataclasses.dataclass
class Summary:
    total: int = 0
    edited: int = 0  # new edits made by this run
    already_done: int = 0
    failed: int = 0
    conflicts: int = 0
    smoke: bool = False
    seconds: float = 0.0  # the whole run, start-up included
    dispatch_seconds: float = 0.0  # from the first item handed out to the last result written
    executor_seconds: float = 0.0  # summed over items: time inside ComfyUI's executor
    failed_ids: list = dataclasses.field(default_factory=list)


def run(config: RunConfig, items: list[itemlib.Item], log=print) -> Summary:
    started = time.monotonic()
    _check_output_folder(config.output)
    with output_lock(config.output):
        return _run(config, items, log, started)


def _run(config: RunConfig, items: list[itemlib.Item], log, started: float) -> Summary:
    ledger = itemlib.Ledger(config.output)
    attempts_log = os.path.join(config.output, "attempts.log")
    catalog = Workflows(config.workflow)
    try:
        catalog.inputs(config.workflow)
    except prompts.PromptError as error:
        raise RunError(f"--workflow {config.workflow}: {error}") from None
    for item in items:
        _assign_workflow(item, config, catalog)
    workflows = sorted({item.workflow for item in items if catalog.known(item.workflow)})
    smoke = _decide_smoke(config, [catalog.ui(name) for name in workflows], log)

    summary = Summary(total=len(items), smoke=smoke)
    todo = _plan(config, items, ledger, summary, log, smoke, catalog)
    if summary.already_done:
        log(f"{summary.already_done} of {len(items)} items are already done in {config.output} (results.jsonl); "
            "skipping them")
    if not todo:
        log("nothing to edit")
        summary.seconds = time.monotonic() - started
        return summary

    count = _worker_count(config)
    setup = _worker_setup(config, {name: catalog.ui(name) for name in workflows}, smoke, count, log)
    backend = _backend(config, setup, count, log)
    progress = Progress(len(todo), quiet=config.quiet, log=log)
    backend.progress = progress
    try:
        reports = backend.start()
        live = [report["worker"] for report in reports if report["ok"]]
        if not live:
            raise RunError("no worker is ready: " + "; ".join(f"{r['worker']}: {' '.join(r['problems'])}"
                                                              for r in reports))
        dispatch_started = time.monotonic()
        _dispatch(_Dispatch(backend, live, config, ledger, progress, summary, attempts_log, log), todo)
        summary.dispatch_seconds = time.monotonic() - dispatch_started
    finally:
        progress.close()
        backend.close()
    summary.seconds = time.monotonic() - started
    return summary


# -- planning ---------------------------------------------------------------------------------------------------
def _check_output_folder(output: str) -> None:
    """Found before any edit, not after: the folder can be made and written."""
    try:
        os.makedirs(output, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=output, prefix=".icedit-write-test-", delete=True)
        probe.close()
    except OSError as error:
        raise RunError(f"--output {output}: cannot write there ({error.strerror})") from None


@contextlib.contextmanager
def output_lock(output: str):
    """One run per output folder: two would edit the same items and overwrite each other's files and ledger lines.
    The second is refused at once, naming the holder, rather than made to wait: a run that waits hours for
    another to finish the very same work is a mistake to report, not to hide. flock(2) goes with its holder,
    so a run killed with SIGKILL leaves no stale lock; the file holds the holder's pid for this message."""
    path = os.path.join(output, LOCK_FILE)
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open as long as the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise RunError(f"--output {output} is in use by another run (pid {holder or 'unknown'}); wait for it "
                           "to finish or give this one another --output") from None
        try:  # the holder before us may have removed the file after we opened it: lock the one that is there
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # while still locked, so no run ever locks a file that is about to go
        handle.close()


def _decide_smoke(config: RunConfig, workflows: list[dict], log) -> bool:
    if config.smoke_test:
        return True
    if config.servers:
        return _server_lacks_real_files(config.servers[0], workflows, log)
    comfy_models = os.path.join(config.comfyui_path, "models") if config.comfyui_path else None
    model_dirs = [d for d in (config.models_dir, comfy_models) if d]
    missing = {entry for workflow in workflows for entry in prompts.real_files_missing(workflow, model_dirs)}
    if missing:
        log("real weights not found (looked in " + ", ".join(model_dirs) + "): " + ", ".join(sorted(missing)))
        log(SMOKE_NOTICE)
    return bool(missing)


def _server_lacks_real_files(url: str, workflows: list[dict], log) -> bool:
    """Whether a running server lacks any of the official files the workflows load (then the run uses the
    smoke-test stand-ins, which each worker's check then looks for)."""
    server = ComfyClient(url).wait_ready()
    info = server.object_info()
    lacking = sorted({entry for workflow in workflows
                      for entry in prompts.files_the_server_lacks(prompts.to_api(workflow, info), info)})
    if lacking:
        log(f"the server at {server.url} lists no real weights for " + "; ".join(lacking))
        log(SMOKE_NOTICE)
    return bool(lacking)


def _assign_workflow(item: itemlib.Item, config: RunConfig, catalog: Workflows) -> None:
    """The workflow that edits the item: its row's, else --workflow's, else (for a clip that --workflow cannot take)
    the video workflow. An item the workflow cannot take (unknown, or a video for an image workflow) gets its error."""
    is_video = video.is_video(item.image)
    if item.workflow is None:
        item.workflow = config.workflow
        if is_video and "video" not in catalog.inputs(config.workflow):
            item.workflow = itemlib.VIDEO_WORKFLOW
    if item.error is not None:
        return
    if not catalog.known(item.workflow):
        item.error = f"{item.where}: no shipped workflow {item.workflow!r} (choose from {sorted(prompts.WORKFLOWS)})"
        return
    try:
        declared = catalog.inputs(item.workflow)
    except prompts.PromptError as error:
        item.error = f"{item.where}: {error}"
        return
    name = os.path.basename(item.image)
    if is_video and "video" not in declared:
        item.error = (f"{item.where}: {name} is a video; the {item.workflow} workflow edits images (use --video, or "
                      "the video workflow)")
    elif not is_video and "image" not in declared:
        item.error = (f"{item.where}: the {item.workflow} workflow edits video files "
                      f"({', '.join(video.VIDEO_EXTENSIONS)}); {name} is not one")
    elif set(config.extra_inputs) - set(declared):
        item.error = (f"{item.where}: --set {', '.join(sorted(set(config.extra_inputs) - set(declared)))}: the "
                      f"{item.workflow} workflow declares no such input (it declares {', '.join(declared)})")


def _plan(config: RunConfig, items, ledger, summary, log, smoke: bool, catalog: Workflows) -> list[itemlib.Job]:
    """The jobs this run must do, each built once; bad rows are recorded as refused, finished ones skipped,
    conflicts refused. Items have their workflow assigned (_assign_workflow)."""
    run_values = {setting.name: getattr(config, setting.name) for setting in settinglib.SETTINGS}
    todo = []
    for item in items:
        resolved = settinglib.resolve(smoke, run_values, item.values)
        is_video, clip = video.is_video(item.image), None
        if item.error is None:
            try:
                if is_video:  # checked and keyed without holding the clip: it may be long
                    clip = itemlib.check_video(item.image)
                else:
                    image_bytes, _ = itemlib.upload_bytes(item.image)
            except itemlib.ItemError as error:
                item.error = f"{item.where}: {error}"
        if item.error is not None:
            log(f"bad row: {item.error}")
            ledger.record_refused(item, item.error, resolved["seed"], item.workflow)
            summary.failed += 1
            summary.failed_ids.append(item.id)
            continue
        declared = catalog.inputs(item.workflow)
        decided_by = settinglib.key_settings(item.workflow, item.instruction, resolved, set(declared),
                                             config.extra_inputs)
        parts = _segments(item, clip, resolved["segment_frames"], declared, log)
        if parts:  # a split clip's key says so; a clip edited whole keeps the key it always had
            decided_by["segment_frames"] = resolved["segment_frames"]
        job = itemlib.Job(
            id=item.id, source=item.image, where=item.where, workflow=item.workflow,
            upload_as="video" if is_video else "image",
            inputs={"instruction": item.instruction, **{name: value for name, value in resolved.items()
                                                        if name in declared and name not in
                                                        settinglib.RUNNER_SETTINGS}, **config.extra_inputs},
            settings=decided_by, segments=parts,
            key=(itemlib.file_key(item.image, decided_by) if is_video
                 else itemlib.content_key(image_bytes, decided_by)))
        if ledger.done(job.id, job.key):
            summary.already_done += 1
            continue
        foreign = [name for name in job.result_names()
                   if ledger.state.get(job.id) is None and os.path.exists(os.path.join(config.output, name))]
        if ledger.conflict(job.id, job.key) or foreign:
            log(f"not edited: {item.where}: {config.output} already holds "
                + (f"files of id {item.id!r} that results.jsonl does not list ({', '.join(sorted(foreign))})"
                   if foreign else f"an edit with id {item.id!r} made from another image or settings")
                + "; give the item another id or use another --output (nothing is overwritten)")
            summary.conflicts += 1
            continue
        todo.append(job)
    return todo


def _segments(item: itemlib.Item, clip, segment_frames, declared: dict, log) -> tuple:
    """The segments a clip is edited in: () when it is edited whole (an image, a clip of at most segment_frames
    frames, or a workflow that cannot carry its noise from segment to segment)."""
    if clip is None or not segment_frames or clip.frames <= segment_frames:
        return ()
    if "video_carry" not in declared:
        log(f"{item.where}: {clip.frames} frames are edited in one piece: the {item.workflow} workflow declares no "
            "video_carry input (ICEdit Video Noise's carry_in), so it cannot be split into segments of "
            f"{segment_frames} frames; memory grows with the clip's length")
        return ()
    parts = tuple(segments.plan(clip.frames, segment_frames))
    log(f"{item.where}: {clip.frames} frames, edited in {len(parts)} segments of up to {segment_frames} frames "
        "(--segment-frames), then joined")
    return parts


def _worker_setup(config: RunConfig, workflows: dict, smoke: bool, count: int, log) -> dict:
    threads = _threads_per_server(config, count)
    if threads and "OMP_NUM_THREADS" not in os.environ:
        log(f"no GPU: each of the {count} ComfyUI servers computes with {threads} of this machine's "
            f"{_usable_cores()} cores (set OMP_NUM_THREADS to choose)")
    setup = {"workflows": workflows, "smoke": smoke, "omp_num_threads": threads}
    if config.servers:
        return setup
    smoke_dir = ensure_smoke_models(sys.executable, config.cache, log) if smoke else None
    setup.update(comfyui_path=config.comfyui_path or paths.comfyui_path(), python=sys.executable,
                 custom_nodes=os.path.join(paths.PACK_ROOT, ".host", "custom_nodes"),
                 model_dirs=[d for d in (config.models_dir, smoke_dir) if d])
    return setup


def ensure_smoke_models(python: str, cache: str, log=print) -> str:
    """The smoke-test model folder, generated once in a separate process (it imports ComfyUI)."""
    result = subprocess.run([python, "-m", "comfyui_icedit.devtools.make_smoke_models", "--cache", cache],
                            env=paths.python_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RunError(f"generating the smoke-test models failed:\n{result.stderr[-3000:]}")
    for line in result.stderr.splitlines():  # its own messages, not ComfyUI's import-time warnings
        if line.startswith("generating"):
            log(line)
    return result.stdout.strip().splitlines()[-1]


def _ray_package(folder: str) -> str:
    """What a Ray worker imports, under the name the driver uses (`comfyui_icedit.runner`): the package's
    `__init__.py`, the runner and the core it reads, copied into `folder`. Not the checkout: that also holds the
    ComfyUI copy, the tests and git."""
    package = os.path.join(folder, paths.PACKAGE)
    os.makedirs(package)
    shutil.copy(os.path.join(paths.PACK_ROOT, "__init__.py"), package)
    ignore = shutil.ignore_patterns("__pycache__")
    for room in ("runner", "icedit_core"):
        shutil.copytree(os.path.join(paths.PACK_ROOT, room), os.path.join(package, room), ignore=ignore)
    return package


# -- dispatching ------------------------------------------------------------------------------------------------
def _dispatch(state: _Dispatch, todo: list[itemlib.Job]) -> None:
    try:
        _hand_out(state, todo)
    finally:
        for clip in state.clips.values():
            clip.close()


def _hand_out(state: _Dispatch, todo: list[itemlib.Job]) -> None:
    queue = collections.deque(todo)
    idle = list(state.live)
    busy: dict[str, itemlib.Job] = {}
    while queue or busy:
        if not state.live:
            raise RunError("every worker is gone; the ledger keeps what finished - run the same command again")
        for name in list(idle):  # an idle worker always finds a job while any is queued (see _next_job_for)
            job = _next_job_for(name, queue, state)
            if job is None:
                continue
            try:
                if job.segments:
                    clip = _clip(state, job)
                    if clip.finished:  # an earlier run edited every segment but was stopped before the join
                        _join(state, job, clip, worker=None)
                        continue
                    request, doing = clip.request(state.config.item_timeout), f"{job.id} {clip.describe()}"
                else:
                    request, doing = job.request(state.config.item_timeout), job.id
            except (itemlib.ItemError, video.VideoError) as error:  # the file changed or went away since the start
                _record_failure(state, job, f"{job.where}: {error}")
                continue
            idle.remove(name)
            busy[name] = job
            state.backend.submit(name, request)
            state.progress.working(name, doing)
        if not busy:
            continue
        finished = state.backend.wait(timeout=1.0)
        state.progress.refresh()
        for name, outcome in finished:
            job = busy.pop(name)
            state.progress.working(name, None)
            if state.backend.alive(name):
                idle.append(name)
            elif name in state.live:
                state.live.remove(name)
                state.log(f"worker {name} is gone for good (its process died {ACTOR_RESTARTS + 1} times)")
            if outcome.ok and job.segments:
                if _keep_segment(state, job, outcome):
                    queue.appendleft(job)  # its next segment, on the first free worker
                continue
            if outcome.ok:
                _write_result(state, job, outcome)
                continue
            failed_on = state.failed_on[job.id]
            failed_on.append(name)
            with open(state.attempts_log, "a", encoding="utf-8") as handle:
                handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {job.id} on {name}: {outcome.error}\n")
            # Retried up to --retries times, on another worker when there is one; failing on two is final.
            retry = len(failed_on) <= state.config.retries and len(set(failed_on)) < 2
            if retry and not outcome.final:
                state.log(f"retrying {job.id} ({job.where}) after: {outcome.error.splitlines()[0]}")
                queue.appendleft(job)
            else:
                _record_failure(state, job, outcome.error, worker=name, seconds=outcome.seconds)


def _next_job_for(name: str, queue, state: _Dispatch):
    """The first queued job this worker has not failed, or that no other live worker could take instead."""
    for job in queue:
        failed_on = state.failed_on.get(job.id, ())
        others = [w for w in state.live if w != name and w not in failed_on]
        if name not in failed_on or not others:
            queue.remove(job)
            return job
    return None


def _write_result(state: _Dispatch, job: itemlib.Job, outcome: itemlib.Outcome, written=None) -> None:
    """The outcome's files and the job's ok line; `written`: the files are already there (a joined clip)."""
    written = list(written or [])
    # The files and their ledger line are one step that Ctrl-C or SIGTERM cannot split: the signals wait.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for output in outcome.outputs:
            extension = os.path.splitext(output.filename)[1]
            name = (f"{job.id}_{output.kind}{extension}" if output.kind in ("edited", "comparison")
                    else f"{job.id}_{output.filename}")
            itemlib.write_atomically(os.path.join(state.config.output, name), output.data)
            written.append(name)
        state.ledger.record_ok(job, outcome, written)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    state.summary.edited += 1
    state.summary.executor_seconds += outcome.executor_seconds
    state.progress.finished(job.id, True, outcome.worker, outcome.seconds,
                            [os.path.join(state.config.output, n) for n in written], outcome.texts)


def _clip(state: _Dispatch, job: itemlib.Job) -> SegmentedClip:
    if job.id not in state.clips:
        clip = state.clips[job.id] = SegmentedClip(job, state.config.output, state.ledger)
        if clip.next:
            state.log(f"{job.id}: segments 1-{clip.next} of {clip.count} were edited by an earlier run; going on "
                      f"from segment {clip.next + 1}")
    return state.clips[job.id]


def _keep_segment(state: _Dispatch, job: itemlib.Job, outcome: itemlib.Outcome) -> bool:
    """Keeps an edited segment and its ledger line; after the last one joins the clip and writes its result.
    True while segments are left."""
    clip = state.clips[job.id]
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # files, then their line
    try:
        try:
            written = clip.keep(outcome)
        except ValueError as error:
            _record_failure(state, job, str(error), worker=outcome.worker, seconds=outcome.seconds)
            return False
        state.ledger.record_partial(job, outcome, clip.next, written)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    state.failed_on.pop(job.id, None)  # retries count per segment
    if not clip.finished:
        return True
    _join(state, job, clip, outcome.worker)
    return False


def _join(state: _Dispatch, job: itemlib.Job, clip: SegmentedClip, worker) -> None:
    name = job.result_names()[0]
    try:
        whole = clip.join(os.path.join(state.config.output, name))
    except video.VideoError as error:
        _record_failure(state, job, f"{job.where}: {error}", worker=worker)
        return
    _write_result(state, job, whole, written=[name])
    clip.remove()


def _record_failure(state: _Dispatch, job: itemlib.Job, error: str, worker=None, seconds=0.0) -> None:
    state.ledger.record_failed(job, error, worker=worker, seconds=seconds)
    state.summary.failed += 1
    state.summary.failed_ids.append(job.id)
    state.progress.finished(job.id, False, worker, seconds, [], [error])


# -- backends ---------------------------------------------------------------------------------------------------
def _worker_count(config: RunConfig) -> int:
    return config.workers or (len(config.servers) if config.servers else _visible_gpus() or 1)


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _threads_per_server(config: RunConfig, count: int) -> str | None:
    """OMP_NUM_THREADS for the servers this run starts (torch takes its intra-op thread count from it). Without a
    GPU each server's torch would take every core, so N servers on one machine oversubscribe it: each gets about
    cores / N instead. The user's own OMP_NUM_THREADS always wins; servers at --servers or on a Ray cluster's
    other machines are not ours to size (None: the server's torch decides)."""
    if "OMP_NUM_THREADS" in os.environ:
        return os.environ["OMP_NUM_THREADS"]
    if count < 2 or config.servers or config.ray_address or _visible_gpus():
        return None
    return str(max(1, _usable_cores() // count))


def _backend(config: RunConfig, setup: dict, count: int, log):
    if config.servers and config.workers and config.workers != len(config.servers):
        raise RunError(f"--workers {config.workers} with {len(config.servers)} --servers: with --servers there "
                       "is one worker per server")
    if count == 1 and not config.ray_address:
        return LocalBackend([{**setup, "url": config.servers[0]} if config.servers else setup], log)
    if config.ray_address and not config.workers:  # one per GPU of the cluster, counted once connected
        return RayBackend([setup], config, log, one_per_cluster_gpu=True)
    setups = [{**setup, "url": url} for url in config.servers] if config.servers else [setup] * count
    return RayBackend(setups, config, log)


def _visible_gpus() -> int:
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU ")]
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip()])
    return len(gpus)


def _announce(report: dict, log) -> bool:
    where = f"{report['url']}" + (f", ComfyUI pid {report['pid']}" if report.get("pid") else "")
    if report["ok"]:
        log(f"worker {report['worker']} ready on {report['host']} ({where})")
    else:
        log(f"worker {report['worker']} on {report['host']} ({where}) gets no items: " + "; ".join(report["problems"]))
    return report["ok"]


class LocalBackend:
    """One worker in this process: `submit` does the item at once, `wait` hands its result back."""

    def __init__(self, setups, log):
        self.worker = EditWorker(setups[0], "w1")
        self.log = log
        self.done = []
        self.progress = None  # set by run(): the step display of the item in hand

    def start(self) -> list[dict]:
        process = self.worker.process
        self.log(f"using the ComfyUI server at {self.worker.server.url}" if process is None else
                 f"starting ComfyUI ({process.comfyui_path}); log: {process.log_path}")
        report = self.worker.start()
        _announce(report, self.log)
        return [report]

    def submit(self, name, request: itemlib.EditRequest) -> None:
        def on_progress(text):
            self.progress.working(name, f"{request.id} ({text})")
        self.done.append((name, self.worker.edit(request, on_progress)))

    def wait(self, timeout):
        done, self.done = self.done, []
        return done

    def alive(self, name) -> bool:
        return True

    def close(self) -> None:
        self.worker.stop()


class RayBackend:
    """Worker actors on a local Ray instance (started here, stopped at the end) or on the cluster at
    --ray-address. The driver reads images and writes results; bytes travel through Ray, so no shared
    filesystem is needed."""

    def __init__(self, setups, config: RunConfig, log, one_per_cluster_gpu=False):
        self.setups, self.config, self.log = setups, config, log
        self.one_per_cluster_gpu = one_per_cluster_gpu
        self.actors, self.futures, self.deaths = {}, {}, collections.Counter()
        self.temp_dir = None

    def start(self) -> list[dict]:
        if not self.config.ray_address:
            # A local instance stays on loopback, out of the home folder, and quiet; Ray reads these on import.
            for name, value in (("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0"),
                                ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")):
                os.environ.setdefault(name, value)
        import ray

        self.temp_dir = tempfile.mkdtemp(prefix="icedit-ray-", dir="/tmp")
        runtime_env = {"py_modules": [_ray_package(self.temp_dir)], "env_vars": {"PYTHONUNBUFFERED": "1"}}
        if self.config.ray_address:
            ray.init(address=self.config.ray_address, runtime_env=runtime_env, log_to_driver=False)
        else:
            # address="local": always a new instance of our own, never a cluster that `ray start` left running
            # on this machine (which a bare ray.init() would join).
            ray.init(address="local", num_cpus=max(len(self.setups), os.cpu_count() or 1), include_dashboard=False,
                     _temp_dir=self.temp_dir, log_to_driver=False, runtime_env=runtime_env)
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.one_per_cluster_gpu:
            self.setups = self.setups[:1] * max(1, int(gpus))
        per_worker_gpus = 1 if gpus >= 1 and not self.setups[0].get("url") else 0
        self.log(f"Ray: {len(self.setups)} workers on {ray.cluster_resources().get('CPU', 0):.0f} CPUs"
                 f"{f', {gpus:.0f} GPUs (one each)' if per_worker_gpus else ''}")
        # Two threads per actor: stop() can end the server while edit() waits on it (Ctrl-C mid-item).
        actor_class = ray.remote(EditWorker).options(num_cpus=1, num_gpus=per_worker_gpus, max_concurrency=2,
                                                     max_restarts=ACTOR_RESTARTS, max_task_retries=0)
        for index, setup in enumerate(self.setups, 1):
            self.actors[f"w{index}"] = actor_class.remote(setup, f"w{index}")
        reports = ray.get([actor.start.remote() for actor in self.actors.values()])
        for report in reports:
            if not _announce(report, self.log):
                self._drop(report["worker"])
        return reports

    def submit(self, name, request: itemlib.EditRequest) -> None:
        self.futures[self.actors[name].edit.remote(request)] = (name, request.id)

    def wait(self, timeout):
        import ray
        from ray.exceptions import RayActorError

        ready, _ = ray.wait(list(self.futures), num_returns=1, timeout=timeout)
        finished = []
        for ref in ready:
            name, item_id = self.futures.pop(ref)
            try:
                finished.append((name, ray.get(ref)))
            except RayActorError as error:
                self.deaths[name] += 1
                if self.deaths[name] > ACTOR_RESTARTS:
                    self._drop(name)
                finished.append((name, itemlib.Outcome(
                    id=item_id, worker=name, error=f"worker {name}'s process died ({type(error).__name__})")))
        return finished

    def alive(self, name) -> bool:
        return name in self.actors

    def _drop(self, name) -> None:
        import ray

        actor = self.actors.pop(name, None)
        if actor is not None:
            ray.kill(actor, no_restart=True)

    def close(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        try:  # each actor ends its server and removes its folder; a dead actor's server died with it
            ray.get([actor.stop.remote() for actor in self.actors.values()], timeout=30)
        except Exception:  # noqa: BLE001
            pass
        ray.shutdown()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
