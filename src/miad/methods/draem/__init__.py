"""DRAEM (Zavrtanik et al., ICCV 2021): a discriminatively trained reconstruction embedding with synthetic anomalies."""
