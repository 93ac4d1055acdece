"""One worker: a ComfyUI server (started and owned, or one already running at a URL) that stays warm across
items, the workflows converted once against its /object_info, and `edit(request)` for one item. The same class
runs in the driver's process (one worker, no Ray) and as a Ray actor (engine.py). Stdlib + aiohttp + comfy-cli.
"""
from __future__ import annotations

import os
import socket
import sys
import time

from . import comfy_host, prompt as prompts
from .items import EditRequest, Outcome, Output
from ..icedit_core.model_files import SMOKE_NODES_ENV
from ..icedit_core.segment_carry import CARRY_UI_KEY
from .prompt import SMOKE_CLIP_SWAPS

PACK_NODE = "ICEditDiptych"  # present when the pack loaded on that server
SERVER_START_TIMEOUT = 300.0  # seconds for a ComfyUI server of ours to answer after it was started


class EditWorker:
    """`setup` is plain data (it travels to Ray actors): workflows {name: UI workflow dict}, smoke (bool),
    omp_num_threads, and either url (a running server), or comfyui_path, python, custom_nodes and model_dirs
    to start one."""

    def __init__(self, setup: dict, name: str):
        self.setup = setup
        self.name = name
        # The server this worker starts and owns (None for one running at setup's url), and the client that talks
        # to it; a restarted server gets a new client (a new port, no prompts of ours).
        self.process: comfy_host.ComfyProcess | None = None
        self.server: comfy_host.ComfyClient | None = None
        if setup.get("url"):
            self.server = comfy_host.ComfyClient(setup["url"])
        else:
            self.process = comfy_host.ComfyProcess(
                comfyui_path=setup["comfyui_path"], python=setup.get("python") or sys.executable,
                # Ray pins OMP_NUM_THREADS to the actor's CPU share; the server gets the run's setting instead (the
                # user's, or cores / N for N servers on a machine without a GPU: engine._threads_per_server).
                env={"OMP_NUM_THREADS": setup.get("omp_num_threads"),
                     SMOKE_NODES_ENV: "1" if setup.get("smoke") else None})
            self.process.extra_model_paths = comfy_host.write_extra_model_paths(
                os.path.join(self.process.workdir, "extra_model_paths.yaml"), setup["custom_nodes"],
                setup["model_dirs"])
        self.prompts: dict[str, prompts.ApiPrompt] = {}
        self.output_kinds: dict[str, dict[str, str]] = {}  # workflow -> {saving node id: kind}
        self.stopping = False

    # -- start-up and the check before work ------------------------------------------------------------------
    def start(self) -> dict:
        """Starts (or reaches) the server and converts the workflows; returns a report: {worker, host, url,
        ok, problems}. A worker whose report is not ok gets no items."""
        problems = []
        try:
            if self.process is None:
                self.server.wait_ready()  # a server that is running answers at once
            else:
                self.server = self.process.start(timeout=SERVER_START_TIMEOUT)
            info = self.server.object_info()
        except comfy_host.ComfyError as error:
            return self._report([str(error).splitlines()[0]])
        if PACK_NODE not in info:
            return self._report([f"the ComfyUI at {self.server.url} does not have the ICEdit pack's nodes "
                                 f"({PACK_NODE} is not in /object_info)"])
        for name, workflow in self.setup["workflows"].items():
            try:
                api = prompts.to_api(workflow, info)
            except prompts.PromptError as error:
                problems.append(f"workflow {name}: {error}")
                continue
            if self.setup.get("smoke"):
                api = prompts.smoke_prompt(api)
                needed = sorted({node["class_type"] for node in api.values()} &
                                {stand_in for stand_in, _, _ in SMOKE_CLIP_SWAPS.values()})
                if set(needed) - set(info):
                    problems.append(f"the ComfyUI at {self.server.url} does not register {', '.join(needed)}, "
                                    f"which smoke runs need: start it with {SMOKE_NODES_ENV}=1")
                    continue
            lacking = prompts.files_the_server_lacks(api, info)
            if lacking:
                problems.append(f"workflow {name}: the server lists no model file for " + "; ".join(lacking))
            self.prompts[name] = api
            self.output_kinds[name] = prompts.output_kinds(api)
        return self._report(problems)

    def _report(self, problems: list[str]) -> dict:
        return {"worker": self.name, "host": socket.gethostname(), "url": self.server.url if self.server else None,
                "pid": self.process.popen.pid if self.process and self.process.popen else None,
                "ok": not problems, "problems": problems}

    def stop(self) -> None:
        self.stopping = True  # an edit() in another thread must not restart the server it then loses
        if self.process is None:
            self.server.cancel_own_prompts()  # not ours to stop: only take back what this worker queued
        else:
            self.process.cleanup()

    # -- one item --------------------------------------------------------------------------------------------
    def edit(self, request: EditRequest, on_progress=None) -> Outcome:
        """Edit one item: upload its file, set it and the request's values on the workflow's declared inputs, run.
        `on_progress(text)` hears the running node and its step count (in the driver's process only).
        Never raises for the item's own faults: the Outcome says failed, why, and whether a retry could mend it."""
        started = time.monotonic()
        outcome = Outcome(id=request.id, worker=self.name)
        if not self.prompts and not self.stopping:  # a Ray actor restarted after its process died
            report = self.start()
            if not report["ok"]:
                outcome.error = "; ".join(report["problems"])
                return outcome
        try:
            uploaded = self.server.upload_image(request.upload, request.extension,
                                                timeout=min(60.0, request.timeout))
            prompt = prompts.with_inputs(self.prompts[request.workflow], **{request.upload_as: uploaded},
                                         **request.inputs)
            executor_started = time.monotonic()
            entry = self.server.run(prompt, timeout=request.timeout, on_progress=_step_reporter(prompt, on_progress),
                                    on_queued=lambda ahead: print(f"{request.id}: waiting behind {ahead} other "
                                                                  f"prompts on {self.server.url}", flush=True))
            outcome.executor_seconds = time.monotonic() - executor_started
            kinds = self.output_kinds[request.workflow]
            for node_id, output in entry["outputs"].items():
                for image in output.get("images", []):
                    if image.get("type") == "output":  # previews (Early Filter candidates) stay on the server
                        outcome.outputs.append(Output(kind=kinds.get(node_id, f"node{node_id}"), node=node_id,
                                                      filename=image["filename"], data=self.server.view(image)))
                outcome.texts += [str(text) for text in output.get("text", [])]
                for state in output.get(CARRY_UI_KEY, []):  # ICEdit Video Noise on a segment of a clip
                    outcome.carry = str(state)
            if not any(output.kind == "edited" for output in outcome.outputs):
                raise comfy_host.ComfyError("the workflow finished but saved no 'edited' output (the output node "
                                            "whose filename_prefix ends in 'edited')")
            outcome.status = "ok"
        except (comfy_host.ServerGone, comfy_host.PromptTimeout) as error:
            outcome.error = str(error).splitlines()[0]
            self._recover(outcome)
        except (comfy_host.PromptRejected, prompts.PromptError) as error:
            outcome.error = str(error)
            outcome.final = True  # the same values fail the same way on any worker: no retry
        except comfy_host.NodeFailed as error:
            outcome.error = str(error)
            outcome.final = is_input_fault(error.exception_type)
        except comfy_host.ComfyError as error:
            outcome.error = str(error)
        except Exception as error:  # noqa: BLE001 - one poisoned item must never take the worker down
            outcome.error = f"{type(error).__name__}: {error}"
        outcome.seconds = time.monotonic() - started
        return outcome

    def _recover(self, outcome: Outcome) -> None:
        """After a server death or a hang: a fresh server for the next item (ours), or leave it (external)."""
        if self.process is None:
            self.server.cancel_own_prompts()
            return
        if self.stopping:
            return
        try:
            self.server = self.process.restart(timeout=SERVER_START_TIMEOUT)
            outcome.error += " (the worker restarted its ComfyUI server)"
        except comfy_host.ComfyError as error:
            outcome.error += f" (restarting the ComfyUI server failed: {str(error).splitlines()[0]})"


def is_input_fault(exception_type: str) -> bool:
    """Whether a node's exception says the item's own values are wrong, so a retry would fail the same way: nodes
    (the pack's, ComfyUI's, PyAV's av.error.ValueError) raise ValueError for an input they refuse. Anything else
    (running out of memory, a CUDA or I/O error) may pass on another try or another worker."""
    return exception_type.rsplit(".", 1)[-1] == "ValueError"


def _step_reporter(prompt: dict, on_progress):
    """ComfyUI's progress events as short texts: 'KSampler 3/28'."""
    if on_progress is None:
        return None
    titles = {node_id: node.get("_meta", {}).get("title", node["class_type"]) for node_id, node in prompt.items()}

    def report(kind: str, data: dict) -> None:
        if kind == "progress":
            on_progress(f"{titles.get(data.get('node'), '')} {data.get('value', 0)}/{data.get('max', 1)}")
        elif data.get("node") is not None:
            on_progress(titles.get(data["node"], data["node"]))
    return report
