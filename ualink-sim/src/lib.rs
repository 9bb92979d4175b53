//! ualink-sim: the UALink pod in software.
