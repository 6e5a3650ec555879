"""The `calsync run` tests use the shared fixtures of tests/conftest.py (calsync_bin,
module_sim_factory, calsync_factory); the daemon harness is calsyncproc.py beside this file."""
