"""The outbreak story on one machine: `zerohour demo`, and the process stack that the
real-process tests and `bench/outbreak.py` reuse (`zerohour.demo.stack`)."""
