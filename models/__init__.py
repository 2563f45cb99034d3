"""The face pipeline: model files, ONNX Runtime sessions, detector, recognizer, swappers."""
import warnings

# insightface's face_align calls scikit-image's deprecated SimilarityTransform.estimate on
# every alignment; the warning is theirs to fix and would otherwise flood the server log.
warnings.filterwarnings("ignore", message="`estimate` is deprecated", category=FutureWarning)
