"""Tests of the local Legnext emulator."""
