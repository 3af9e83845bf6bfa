"""A tiny calculator package (fixture for the code action tests)."""
