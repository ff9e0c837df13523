"""Tally edge worker: camera stream -> vehicle counts and congestion; frames stay in memory."""
