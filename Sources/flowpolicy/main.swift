print("flowpolicy")
