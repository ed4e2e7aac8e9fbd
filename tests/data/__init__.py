"""Tests of the data room (t2igan/data)."""
