module lightninglab/feeservice

go 1.25
