"""The Open Inference Protocol (KServe/Triton "v2" REST API), over the same core as /v1."""
