"""Shared by serving, training and evaluation: reading, errors, the network, model files, the
decision rule and its operating point, RLE, metrics. Imports nothing from the other subpackages
(and nothing here at package import: the web reads X-rays through ``ml.core.reading`` without torch)."""
