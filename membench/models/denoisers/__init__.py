"""One denoiser interface for every parameterization: ``D(x, sigma, class_labels=None)``.

Samplers, the sharpness detector and the distillers see only this: x is an image with
noise of standard deviation sigma added (the variance-exploding view, x = x0 + sigma z),
D returns the estimate of x0. Each parameterization maps its network onto it:

| name | network | module |
| --- | --- | --- |
| ``cm_edm`` | EDM preconditioning, c_noise = 250 ln sigma (openai's consistency-model teachers; membench's own) | ``edm`` |
| ``edm`` | EDM preconditioning, c_noise = ln(sigma) / 4 (Karras et al.; diffusers' ``EDMEulerScheduler``) | ``edm`` |
| ``consistency`` | consistency function with boundary scalings c_skip', c_out' (f(x, sigma_min) = x) | ``edm`` |
| ``epsilon``, ``v_prediction``, ``sample`` | a DDPM-family UNet on a discrete beta schedule | ``discrete`` |

Every denoiser has ``parameterization``, ``sigma_min``, ``sigma_max`` (the range samplers
use when their options do not say) and ``num_classes`` (None: unconditional).
Which parameterization a checkpoint has is read from its own configs
(``membench.models.inspect``); where they do not say, the user declares it.
"""
from membench.core.lazy import lazy_exports

PARAMETERIZATIONS: dict[str, str] = {
    "cm_edm": "EDM preconditioning, c_noise = 250 ln(sigma) (openai consistency models' teachers, membench's own)",
    "edm": "EDM preconditioning, c_noise = ln(sigma)/4 (Karras et al. 2022, diffusers EDMEulerScheduler)",
    "consistency": "consistency model: EDM input scaling, boundary scalings c_skip', c_out' (sigma_min = 0.002)",
    "epsilon": "DDPM-family noise prediction on a discrete beta schedule",
    "v_prediction": "DDPM-family v prediction on a discrete beta schedule",
    "sample": "DDPM-family x0 prediction on a discrete beta schedule",
}
DISCRETE = ("epsilon", "v_prediction", "sample")
EDM_LIKE = ("cm_edm", "edm", "consistency")

__all__ = ["PARAMETERIZATIONS", "DISCRETE", "EDM_LIKE", "DiscreteDenoiser", "DiscreteSchedule", "Conditioned"]
__getattr__ = lazy_exports(__name__, {"DiscreteDenoiser": "membench.models.denoisers.discrete",
                                      "DiscreteSchedule": "membench.models.denoisers.discrete",
                                      "Conditioned": "membench.models.denoisers.labels"})
