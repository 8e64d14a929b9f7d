"""Tests of minidl.functional.recurrent, one file per cell as in the package."""
