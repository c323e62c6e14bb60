package main

// Commands wired as their packages land.
var (
	cmdDemo     = notYet("demo")
	cmdStatus   = notYet("status")
	cmdTail     = notYet("tail")
	cmdSnapshot = notYet("snapshot")
	cmdBench    = notYet("bench")
	cmdChaos    = notYet("chaos")
)
