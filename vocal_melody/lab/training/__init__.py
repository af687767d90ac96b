"""Training: frames and sampling, the loop, devices, voicing, teacher-student setups, training folders."""
