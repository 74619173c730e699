"""A queue soak on a real ComfyUI server: many mixed prompts queued at once, each compared with
the same prompt run alone, and the server's memory watched.

Used by tests/test_hardening.py (a small queue) and bench/soak.py (the full 200 prompts).
Every prompt has its own seed, so ComfyUI's output cache never answers a sampler node; the
model, conditioning and patch nodes upstream are cached and shared, as in a user's session.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from .comfy_server import ComfyServer
from .graphs import ADAPTIVE, fixture_inputs

ROUTES = ("adaptive", "patch_custom", "ksampler", "easycache")
KINDS = ("sd15", "sdxl", "wan_t2v")
SAMPLERS = ("euler", "heun", "dpmpp_2m", "euler_ancestral", "dpmpp_2s_ancestral", "uni_pc")
STEPS = (8, 12, 16, 20)
THRESHOLDS = (0.0, 0.02, 0.1, 0.5)
BATCHES = (1, 2, 3)
SIZES = (8, 16)
# ComfyUI's uni_pc writes 0.001 into the last σ of the tensor it is given (a view of the input,
# host code). With SamplerCustomAdvanced that tensor is BasicScheduler's cached output, so a later
# prompt reusing it samples another schedule, with or without this pack: keep uni_pc to the
# routes that build their schedule per call.
WRITES_INTO_SIGMAS = ("uni_pc", "uni_pc_bh2")
WARM_PROMPTS = 20  # RSS is first read after this many prompts, when the host's caches are warm


@dataclass(frozen=True)
class SoakPrompt:
    index: int
    route: str
    kind: str
    steps: int
    sampler: str
    batch: int
    size: int
    threshold: float
    seed: int

    def graph(self) -> dict:
        """API graph: fixture nodes 1-4, sampler chain 5-10, latent stats at node 11."""
        graph = fixture_inputs(self.kind, self.batch, self.size)
        sampling = {"seed": self.seed, "steps": self.steps, "cfg": 4.0, "sampler_name": self.sampler,
                    "scheduler": "normal", "denoise": 1.0, "positive": ["2", 0], "negative": ["3", 0],
                    "latent_image": ["4", 0]}
        adaptive = {**ADAPTIVE, "threshold": self.threshold}  # every Adaptive input, defaults
        if self.route == "adaptive":
            graph["10"] = {"class_type": "AdaptiveKSampler", "inputs": {"model": ["1", 0], **sampling, **adaptive}}
        elif self.route == "ksampler":
            graph["10"] = {"class_type": "KSampler", "inputs": {"model": ["1", 0], **sampling}}
        elif self.route == "easycache":
            graph["5"] = {"class_type": "EasyCache", "inputs": {"model": ["1", 0], "reuse_threshold": 0.2,
                                                                "start_percent": 0.15, "end_percent": 0.95,
                                                                "verbose": False}}
            graph["10"] = {"class_type": "KSampler", "inputs": {"model": ["5", 0], **sampling}}
        elif self.route == "patch_custom":
            graph.update(custom_sampler_nodes(sampling, adaptive))
        else:
            raise ValueError(f"unknown route {self.route!r}")
        graph["11"] = {"class_type": "AdaptiveTestLatentStats", "inputs": {"samples": ["10", 0]}}
        return graph


def custom_sampler_nodes(sampling: dict, adaptive: dict) -> dict:
    """AdaptiveDiffusionPatch (5) → CFGGuider (6) → SamplerCustomAdvanced (10) on model node 1."""
    return {
        "5": {"class_type": "AdaptiveDiffusionPatch", "inputs": {"model": ["1", 0], **adaptive}},
        "6": {"class_type": "CFGGuider", "inputs": {"model": ["5", 0], "positive": sampling["positive"],
                                                    "negative": sampling["negative"], "cfg": sampling["cfg"]}},
        "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": sampling["seed"]}},
        "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampling["sampler_name"]}},
        "9": {"class_type": "BasicScheduler", "inputs": {"model": ["5", 0], "scheduler": sampling["scheduler"],
                                                         "steps": sampling["steps"], "denoise": 1.0}},
        "10": {"class_type": "SamplerCustomAdvanced",
               "inputs": {"noise": ["7", 0], "guider": ["6", 0], "sampler": ["8", 0], "sigmas": ["9", 0],
                          "latent_image": sampling["latent_image"]}},
    }


def soak_prompts(count: int, seed: int = 0) -> list[SoakPrompt]:
    """`count` prompts in pairs; pairs rotate through the routes. Both prompts of a pair share the
    route, model kind, batch, size and δ, so the second one reuses what ComfyUI cached for the
    first (the patched MODEL included) with its own steps, sampler and seed."""
    rng = random.Random(seed)
    prompts = []
    for i in range(count):
        if i % 2 == 0:
            pair = dict(route=ROUTES[(i // 2) % len(ROUTES)], kind=rng.choice(KINDS),
                        batch=rng.choice(BATCHES), size=rng.choice(SIZES), threshold=rng.choice(THRESHOLDS))
        samplers = [name for name in SAMPLERS
                    if pair["route"] != "patch_custom" or name not in WRITES_INTO_SIGMAS]
        prompts.append(SoakPrompt(index=i, steps=rng.choice(STEPS), sampler=rng.choice(samplers),
                                  seed=10_000 + seed * 1000 + i, **pair))
    return prompts


def latent_result(outputs: dict, node: str = "11") -> tuple:
    """What identifies a sampled latent exactly: its shape and the digest of its bytes."""
    ui = outputs[node]
    return tuple(ui["shape"]), ui["digest"][0]


def rss_bytes(server: ComfyServer) -> int:
    import psutil  # a ComfyUI requirement, so present wherever the server runs
    return psutil.Process(server.process.pid).memory_info().rss


@dataclass
class SoakRun:
    results: dict[int, tuple] = field(default_factory=dict)
    rss_after_warm: int = 0
    rss_end: int = 0
    seconds: float = 0.0


def queue_all(server: ComfyServer, prompts: list[SoakPrompt], timeout: float) -> dict[int, tuple]:
    """Queue every prompt at once, then collect each result (raises on the first failure)."""
    ids = [(prompt.index, server.queue(prompt.graph())) for prompt in prompts]
    results = {}
    for index, prompt_id in ids:
        entry = server.wait(prompt_id, timeout)
        if entry.get("status", {}).get("status_str") == "error":
            raise AssertionError(f"soak prompt {index} failed: {entry['status'].get('messages')}")
        results[index] = latent_result(entry["outputs"])
    return results


def run_queued(server: ComfyServer, prompts: list[SoakPrompt], timeout: float = 600.0) -> SoakRun:
    """The first WARM_PROMPTS as one burst (then RSS), the rest as a second burst (then RSS)."""
    run = SoakRun()
    started = time.monotonic()
    run.results.update(queue_all(server, prompts[:WARM_PROMPTS], timeout))
    run.rss_after_warm = rss_bytes(server)
    run.results.update(queue_all(server, prompts[WARM_PROMPTS:], timeout))
    run.rss_end = rss_bytes(server)
    run.seconds = time.monotonic() - started
    return run


def run_alone(server: ComfyServer, prompts: list[SoakPrompt], order_seed: int = 1) -> dict[int, tuple]:
    """Each prompt on its own (queued only when the previous one finished), in shuffled order, so
    a result that depended on the prompt before it would not match the queued run."""
    order = list(prompts)
    random.Random(order_seed).shuffle(order)
    return {prompt.index: latent_result(server.run(prompt.graph())) for prompt in order}


def live_adaptive_runs(server: ComfyServer, tag: int) -> int:
    """AdaptiveRun objects still alive in the server (asked through a fixture output node)."""
    prompt = soak_prompts(1, seed=tag)[0]
    graph = prompt.graph()
    graph["12"] = {"class_type": "AdaptiveTestLiveRuns", "inputs": {"samples": ["10", 0], "tag": tag}}
    return server.run(graph)["12"]["adaptive_runs"][0]


def mismatches(queued: dict[int, tuple], alone: dict[int, tuple], prompts: list[SoakPrompt]) -> list[str]:
    return [f"{prompt}: queued {queued.get(prompt.index)} alone {alone.get(prompt.index)}"
            for prompt in prompts if queued.get(prompt.index) != alone.get(prompt.index)]
