package main

// Commands wired as their packages land.
var (
	cmdDemo  = notYet("demo")
	cmdBench = notYet("bench")
	cmdChaos = notYet("chaos")
)
