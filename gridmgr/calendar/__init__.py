"""The working calendar and deadlines: working hours, holidays, swapped days, clock states."""
