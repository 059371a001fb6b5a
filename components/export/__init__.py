"""Export: torch -> one self-contained ONNX file (fp32) and int8 static quantisation."""
