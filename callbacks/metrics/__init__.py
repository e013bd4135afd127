"""Metric math and feature extractors, importable without Lightning."""

from callbacks.metrics.attribute_classifier import AttributeClassifier
from callbacks.metrics.digits_classifier import DigitsClassifier
from callbacks.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_statistics
from callbacks.metrics.inception import FIDInceptionV3
from callbacks.metrics.inception_score import inception_score
from callbacks.metrics.kid import kernel_inception_distance
from callbacks.metrics.mode_coverage import mode_coverage
from callbacks.metrics.prdc import density_coverage, precision_recall
from callbacks.metrics.spectrum import high_frequency_share
from callbacks.metrics.text_image import attribute_accuracy, r_precision

__all__ = ["AttributeClassifier", "DigitsClassifier", "attribute_accuracy", "r_precision", "FIDInceptionV3", "density_coverage", "feature_statistics", "frechet_distance",
           "frechet_distance_from_statistics", "inception_score", "kernel_inception_distance", "mode_coverage",
           "precision_recall", "high_frequency_share"]
