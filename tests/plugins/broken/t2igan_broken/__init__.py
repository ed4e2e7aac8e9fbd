"""Deliberately broken plugins for t2igan's tests."""
