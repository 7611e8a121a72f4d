"""Analyses and reports: functions of result files that write tables and figures."""
