"""Data validation: datasets checked against schema files, in chunks, through pandera.

The API the CLI and the pipeline use: :func:`validate_dataset`,
:func:`validate_datasets` and :func:`infer_schema`; rendering lives in
:mod:`sluice.data.validation.render`, chunked readers in :mod:`sluice.data.validation.readers`.
Importing this package is cheap: pandas and pandera load on first use.
"""

from __future__ import annotations

from sluice.data.validation.infer import infer_schema
from sluice.data.validation.result import CheckFailure, DatasetValidation, Example
from sluice.data.validation.validate import validate_dataset, validate_datasets

__all__ = ["CheckFailure", "DatasetValidation", "Example", "infer_schema", "validate_dataset",
           "validate_datasets"]
