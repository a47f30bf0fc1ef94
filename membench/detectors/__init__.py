"""Memorization detectors, one per module; see ``base.Detector`` for the interface."""
from membench.detectors.base import Detector, DetectorContext, DetectorOutput, make_detector

__all__ = ["Detector", "DetectorContext", "DetectorOutput", "make_detector"]
