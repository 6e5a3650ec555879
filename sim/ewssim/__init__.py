"""ews-sim: an Exchange 2019 EWS simulator for developing and testing calsync."""
