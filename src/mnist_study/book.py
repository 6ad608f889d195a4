"""The book's published numbers in one place: printed by the notebooks beside their own, tested.

Source: Aurélien Géron, *Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow*, third
edition (O'Reilly, 2022), Chapter 3, and its companion notebook ``03_classification.ipynb``; each
value names the section of the notebook that prints it.
"""

from __future__ import annotations

__all__ = ["NOTEBOOK", "NUMBERS"]

NOTEBOOK = "03_classification.ipynb (third edition)"

NUMBERS = {
    # "Measuring Accuracy Using Cross-Validation"
    "sgd_5_cv_accuracy": [0.95035, 0.96035, 0.9604],
    "dummy_5_cv_accuracy": [0.90965, 0.90965, 0.90965],
    # "Confusion Matrices"
    "sgd_5_confusion_matrix": [[53892, 687], [1891, 3530]],
    # "Precision and Recall"
    "sgd_5_precision": 0.8370879772350012,
    "sgd_5_recall": 0.6511713705958311,
    "sgd_5_f1": 0.7325171197343846,
    # "The Precision/Recall Trade-off"
    "threshold_for_90_precision": 3370.0194991439557,
    "precision_at_90_threshold": 0.9000345901072293,
    "recall_at_90_threshold": 0.4799852425751706,
    # "The ROC Curve"
    "sgd_5_roc_auc": 0.9604938554008616,
    "forest_5_roc_auc": 0.9983436731328145,
    "forest_5_f1": 0.9274509803921569,
    "forest_5_precision": 0.9897468089558485,
    "forest_5_recall": 0.8725327430363402,
    # "Multiclass Classification"
    "svc_some_digit_scores": [3.79, 0.73, 6.06, 8.3, -0.29, 9.3, 1.75, 2.77, 7.21, 4.82],
    "sgd_10_some_digit_scores": [
        -31893.0,
        -34420.0,
        -9531.0,
        1824.0,
        -22320.0,
        -1386.0,
        -26189.0,
        -16148.0,
        -4604.0,
        -12051.0,
    ],
    "sgd_10_cv_accuracy": [0.87365, 0.85835, 0.8689],
    "sgd_10_scaled_cv_accuracy": [0.8983, 0.891, 0.9018],
    # "Multilabel Classification"
    "multilabel_macro_f1": 0.976410265560605,
    "multilabel_weighted_f1": 0.9778357403921755,
    # Exercise 1: "An MNIST Classifier With Over 97% Accuracy"
    "knn_default_test_accuracy": 0.9688,
    "knn_best_params": {"n_neighbors": 4, "weights": "distance"},
    "knn_best_score": 0.9441999999999998,
    "knn_tuned_test_accuracy": 0.9714,
    # Exercise 2: "Data Augmentation"
    "knn_shifted_test_accuracy": 0.9763,
}
