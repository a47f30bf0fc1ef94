"""Samplers: a denoiser + per-sample noises -> images. ``SAMPLERS`` declares the built-ins
lazily; plugins use the entry-point group ``membench.samplers`` and must have ``sample``."""
from membench.core.registry import Lazy, Registry

SAMPLERS = Registry("samplers", required={
    "sample": (callable, "sample(denoiser, z, noise_fn=None) -> images"),
}, builtins={
    "heun": Lazy("membench.models.samplers.karras:HeunSampler",
                 "deterministic Heun (2nd order) ODE steps on the Karras grid; 18 steps = 35 evaluations"),
    "euler": Lazy("membench.models.samplers.karras:EulerSampler",
                  "deterministic Euler ODE steps on the Karras grid; one evaluation per step"),
    "ddim": Lazy("membench.models.samplers.ddim:DDIMSampler",
                 "deterministic DDIM (eta = 0) on a DDPM-family model's own timesteps; one evaluation per step"),
    "consistency": Lazy("membench.models.samplers.consistency:ConsistencySampler",
                        "consistency-model sampling (Song et al. 2023, Alg. 1), one evaluation per step"),
})
