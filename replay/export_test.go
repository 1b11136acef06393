package replay

// ReadExportMax is ReadExport with a smaller line bound, so a test of an
// over-long line need not build 64 MiB.
var ReadExportMax = readExport
