"""Pure numpy / cv2 functions: image intake, geometry, decoding, drawing.

Nothing here imports from the rest of the package, keeps state or logs.
"""
