"""U-Net auto-encoder baseline (MIAD appendix A.2.5; MVTec AD auto-encoder setting, Bergmann et al. 2019)."""
