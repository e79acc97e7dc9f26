"""Launchers start and stop engines (`deploy.engines`) somewhere they can serve.

One module per place: `local` runs an engine as a subprocess of this machine. Slurm and
Kubernetes launchers will sit beside it with the same shape: start, wait until healthy, stop.
"""
