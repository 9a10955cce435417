"""Pretraining the embedded backbone: the real corpus and its held-out slices
(:mod:`~trace_forecast.pretraining.corpus`), weighted mixing at several resolutions
(:mod:`~trace_forecast.pretraining.mixture`), synthetic series
(:mod:`~trace_forecast.pretraining.synthetic`), the masked windows and their resumable
stream (:mod:`~trace_forecast.pretraining.windows`), the Lightning module
(:mod:`~trace_forecast.pretraining.module`) and the campaign of resumed legs
(:mod:`~trace_forecast.pretraining.campaign`). The command line is
``python -m trace_forecast.pretrain``."""
