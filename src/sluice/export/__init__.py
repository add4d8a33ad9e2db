"""Export a tier as a pipeline definition of Argo, KFP, SageMaker, Azure ML or Databricks."""
