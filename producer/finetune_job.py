"""The model a Together fine-tuning job produced, so a run can name the job instead of the model."""

from __future__ import annotations

import logging

import together

from evalfleet.schema.errors import ConfigurationError

logger = logging.getLogger(__name__)

COMPLETED = "completed"


def resolve_finetuned_model(client: together.Together, job_id: str) -> str:
    """The output model name of a completed fine-tuning job (`x_model_output_name`, the API's
    `model_output_name`); a job that is not completed, or unknown, is a configuration error."""
    try:
        job = client.fine_tuning.retrieve(job_id)
    except together.NotFoundError as exc:
        raise ConfigurationError(f"no fine-tuning job {job_id} on this account") from exc
    if job.status != COMPLETED:
        raise ConfigurationError(
            f"fine-tuning job {job_id} is {job.status}, not {COMPLETED}: "
            "evaluate it once it has completed"
        )
    if not job.x_model_output_name:
        raise ConfigurationError(f"fine-tuning job {job_id} completed without an output model name")
    logger.info("fine-tuning job %s: model %s", job_id, job.x_model_output_name)
    return job.x_model_output_name
