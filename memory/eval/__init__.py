"""Recall evaluation on LoCoMo-format conversations: loader, recall@k, runner."""
