"""The trained reference model and the in-process harness that runs it, shared by the demo
(demo/), the benchmarks (bench/) and the tests.

digits_pack/ is the 16×16 digits model with its classifier as a ComfyUI node pack (loaded beside
this pack as `adaptive_demo_digits`, devtools/comfy_server.py); train_reference_model.py made its
weights, check_reference_model.py measures them; harness.py runs ComfyUI in this process.
"""
