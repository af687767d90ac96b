"""Readers and writers of melody files, track matching, and pictures."""
