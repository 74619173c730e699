"""In-process benchmark harness: the real ComfyUI, this pack, and the trained digits model.

Every method is run per prompt (batch 1: AdaptiveDiffusion's decision is per prompt) through
ComfyUI nodes, and real diffusion-network calls are counted below every wrapper.
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devtools.inprocess import boot_comfyui, call_node, load_packs  # noqa: E402

boot_comfyui()

import torch  # noqa: E402

from devtools.comfy_server import PACK_FOLDERS, make_custom_nodes_dir  # noqa: E402

NULL = "none"


@dataclass(frozen=True)
class Prompt:
    seed: int
    digit: int


def prompts(count: int) -> list[Prompt]:
    """`count` (seed, class) pairs, classes cycling 0-9."""
    return [Prompt(seed=1000 + i, digit=i % 10) for i in range(count)]


@dataclass
class RunResult:
    image: torch.Tensor      # [1, 16, 16] in [0, 1]
    model_calls: int
    seconds: float
    mask: str = ""


class Bench:
    def __init__(self):
        import comfy.utils
        comfy.utils.PROGRESS_BAR_ENABLED = False  # thousands of runs: no progress bars in the log
        torch.set_num_threads(2)
        custom_nodes = make_custom_nodes_dir(Path(tempfile.mkdtemp(prefix="adaptive-bench-")))
        self.nodes = load_packs(custom_nodes, list(PACK_FOLDERS))
        (self.model,) = self.call("AdaptiveDemoDigitsModel")
        (self.negative,) = self.call("AdaptiveDemoDigitClass", digit=NULL)
        self.positives = {d: self.call("AdaptiveDemoDigitClass", digit=str(d))[0] for d in range(10)}
        (self.latent,) = self.call("AdaptiveDemoDigitsLatent", batch_size=1)
        from demo.reference_pack.classifier import load_classifier
        self.classifier = load_classifier()

    def call(self, node_type: str, **inputs):
        return call_node(self.nodes, node_type, **inputs)

    def sample(self, prompt: Prompt, node_type: str = "KSampler", model=None, **settings) -> RunResult:
        """One prompt through a sampler node; settings are that node's inputs."""
        model = model if model is not None else self.model
        inputs = dict(model=model, seed=prompt.seed, positive=self.positives[prompt.digit],
                      negative=self.negative, latent_image=self.latent, denoise=1.0, **settings)
        counter = [0]
        handle = model.model.diffusion_model.register_forward_pre_hook(lambda *a: counter.__setitem__(0, counter[0] + 1))
        try:
            start = time.perf_counter()
            out = self.call(node_type, **inputs)
            seconds = time.perf_counter() - start
        finally:
            handle.remove()
        mask = out[1].mask_text() if len(out) > 1 else ""
        image = (out[0]["samples"][0].float().clamp(-1, 1) + 1) / 2
        return RunResult(image, counter[0], seconds, mask)

    def with_cache_node(self, node_type: str, reuse_threshold: float):
        """The model patched by core EasyCache or LazyCache (their default start/end)."""
        (model,) = self.call(node_type, model=self.model, reuse_threshold=reuse_threshold,
                             start_percent=0.15, end_percent=0.95, verbose=False)
        return model

    def predicted_digit(self, image: torch.Tensor) -> int:
        from demo.reference_pack.classifier import predict
        return int(predict(self.classifier, image.unsqueeze(0) * 2 - 1)[0])


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    mse = float(((image - reference) ** 2).mean())
    return 100.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(image: torch.Tensor, reference: torch.Tensor) -> float:
    """SSIM with kornia's implementation (7×7 window: the images are 16×16)."""
    import kornia.metrics
    return float(kornia.metrics.ssim(image.unsqueeze(0), reference.unsqueeze(0), window_size=7).mean())
