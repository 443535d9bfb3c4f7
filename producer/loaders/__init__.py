"""Data set loaders: the CoQA hub split, hub-schema files, official CoQA JSON and SQuAD JSON."""

from evalfleet.producer.loaders.coqa_hub import load_coqa_hub
from evalfleet.producer.loaders.coqa_official import load_coqa_official
from evalfleet.producer.loaders.hub_file import load_hub_file
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.producer.loaders.squad import load_squad

__all__ = [
    "load_coqa_hub",
    "load_coqa_official",
    "load_dataset_spec",
    "load_hub_file",
    "load_squad",
]
