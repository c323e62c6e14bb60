package main

// Commands wired as their packages land.
var (
	cmdRun      = notYet("run")
	cmdDemo     = notYet("demo")
	cmdStatus   = notYet("status")
	cmdTail     = notYet("tail")
	cmdSnapshot = notYet("snapshot")
	cmdSim      = notYet("sim")
	cmdBench    = notYet("bench")
	cmdChaos    = notYet("chaos")
)
