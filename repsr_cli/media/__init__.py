"""The two ends of the flow: images and video on disk. Reading images for every command (read.py), writing
them (write.py, png.py), the one converter between their arrays and the tensors inside (tensors.py), and the
ffmpeg binary with the encoder settings video output and codec degradations share (ffmpeg.py)."""
