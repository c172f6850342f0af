"""The summarizer a deployment serves, chosen by ``LINKPROC_SUMMARIZER``."""

from __future__ import annotations

from linkproc_ray.config import Settings
from linkproc_ray.errors import ConfigError
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.openai import OpenAISummarizer
from linkproc_ray.summarize.protocol import Summarizer
from linkproc_ray.summarize.vllm import VLLMOptions, VLLMSummarizer


def _vllm_options(settings: Settings) -> VLLMOptions:
    if not settings.vllm_model:
        raise ConfigError("LINKPROC_VLLM_MODEL: required when LINKPROC_SUMMARIZER=vllm")
    return VLLMOptions(
        model=settings.vllm_model,
        name=settings.vllm_model_name,
        dtype=settings.vllm_dtype,
        max_model_len=settings.vllm_max_model_len,
        gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
        tensor_parallel_size=settings.vllm_tensor_parallel_size,
        kv_cache_gib=settings.vllm_kv_cache_gib,
        enforce_eager=settings.vllm_enforce_eager,
    )


def make_summarizer(settings: Settings) -> Summarizer:
    """The summarizer the deployment serves, chosen by ``LINKPROC_SUMMARIZER``.

    A ``vllm`` summarizer comes back unstarted (``SummarizerDeployment`` starts
    it); a missing model or endpoint raises :class:`ConfigError` naming the setting.
    """
    if settings.summarizer == "vllm":
        return VLLMSummarizer(_vllm_options(settings))
    if settings.summarizer == "openai":
        if not settings.openai_base_url or not settings.openai_model:
            raise ConfigError(
                "LINKPROC_OPENAI_BASE_URL and LINKPROC_OPENAI_MODEL: required when LINKPROC_SUMMARIZER=openai"
            )
        return OpenAISummarizer(
            settings.openai_base_url,
            settings.openai_model,
            api_key=settings.openai_api_key,
            timeout=settings.summarizer_timeout,
        )
    return ExtractiveSummarizer()
