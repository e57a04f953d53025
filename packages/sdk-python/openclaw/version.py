"""The SDK version, sent to the gateway in ``hello`` and read by the package build (pyproject.toml)."""

SDK_VERSION = "0.1.0"
