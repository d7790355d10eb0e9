"""The building blocks of every topology section: the strict base model and the shared field types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Lab names become the prefix of every namespace (`<lab>-<node>`); no hyphen, so that the prefix
# `<lab>-` of one lab can never match the namespaces of another lab.
LAB_NAME_PATTERN = r"^[a-z][a-z0-9]*$"
LAB_NAME_MAX = 12
# Node names appear in namespace names and (shortened when needed) in interface names.
NODE_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
NODE_NAME_MAX = 32

LabName = Annotated[str, StringConstraints(pattern=LAB_NAME_PATTERN, max_length=LAB_NAME_MAX)]
NodeName = Annotated[str, StringConstraints(pattern=NODE_NAME_PATTERN, max_length=NODE_NAME_MAX)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Strict(BaseModel):
    """Base for every topology section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
